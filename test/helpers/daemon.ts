import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const ROOT = new URL("../..", import.meta.url).pathname;

export interface Daemon {
  port: number;
  url: string;
  pid: number;
  child: ChildProcess;
  /** Every JSON log line the daemon printed so far. */
  logs: Record<string, unknown>[];
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

export interface DaemonOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Wrap the daemon command, e.g. ["unshare", "--pid", "--fork"]. */
  wrapper?: string[];
}

/** Starts dist/main.js on a free port and waits for its "listening" line. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const runDir = mkdtempSync(join(tmpdir(), "envd-run-"));
  const cmd = [...(opts.wrapper ?? []), process.execPath, join(ROOT, "dist/main.js"), "--port", "0", "--listen", "127.0.0.1", "--run-dir", runDir, "--no-clock-sync", ...(opts.args ?? [])];
  const child = spawn(cmd[0]!, cmd.slice(1), {
    env: { ...process.env, ENVD_LOG_LEVEL: "info", ...opts.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const logs: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("daemon did not report listening within 15 s")), 15_000);
    child.once("exit", (code) => reject(new Error(`daemon exited early with ${code}`)));
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
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    child,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), 10_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      rmSync(runDir, { recursive: true, force: true });
      return code;
    },
  };
}
