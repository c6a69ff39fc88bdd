// Builds the release when it is older than its inputs, and starts any daemon command (the
// single executable, the bundle, dist/main.js) the way test/helpers/daemon.ts starts dist/.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** The repository root. */
export const ROOT = new URL("../..", import.meta.url).pathname;
/** Where scripts/build-release.mjs writes. */
export const RELEASE = join(ROOT, "release");

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, e)));
  return newest;
}

/** Runs scripts/build-release.mjs unless release/ is newer than src/, native/ and the script. */
export function ensureRelease(): { rebuilt: boolean; seconds: number } {
  const inputs = ["src", "native/build/Release", "scripts/build-release.mjs", "package.json", "deploy", "node_modules/node-pty/build/Release/pty.node"];
  const outputs = ["envd", "envd.cjs", "native/pty.node"].map((f) => join(RELEASE, f));
  const built = Math.min(...outputs.map((f) => (existsSync(f) ? statSync(f).mtimeMs : 0)));
  const newestInput = Math.max(...inputs.map((p) => newestMtime(join(ROOT, p))));
  if (built > newestInput && existsSync(join(RELEASE, tarballName()))) return { rebuilt: false, seconds: 0 };
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(ROOT, "scripts/build-release.mjs")], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`build-release failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  return { rebuilt: true, seconds: (Date.now() - t0) / 1000 };
}

/** release/envd-ts-<version>-linux-<arch>.tar.gz's file name. */
export function tarballName(): string {
  const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  return `envd-ts-${version}-linux-${process.arch}.tar.gz`;
}

/** A daemon started from a command line. */
export interface StartedDaemon {
  url: string;
  port: number;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  /** Milliseconds from spawn to the "listening" log line. */
  startMs: number;
  stop(): Promise<number | null>;
}

/** Spawns `cmd` (which must accept envd's flags) on a free port and waits for "listening". */
export async function startCommand(cmd: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; runDir: string }): Promise<StartedDaemon> {
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd[0]!, [...cmd.slice(1), "--port", "0", "--listen", "127.0.0.1", "--run-dir", opts.runDir], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
  const logs: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd.join(" ")} did not report listening within 20 s: ${stderr}`)), 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd.join(" ")} exited early with ${code}: ${stderr}`));
    });
    lines.on("line", (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(rec);
      if (rec.msg === "listening") {
        clearTimeout(timer);
        resolve(Number(rec.port));
      }
    });
  });
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    logs,
    startMs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), 10_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      return code;
    },
  };
}
