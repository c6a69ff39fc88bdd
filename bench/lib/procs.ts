import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The repository root (bench/lib/ is two levels below it). */
export const ROOT = new URL("../..", import.meta.url).pathname;

/** A server process the bench started, with its port and how to stop it. */
export interface Server {
  name: string;
  pid: number;
  port: number;
  /** A second port for h2c, when the server has separate HTTP/1.1 and HTTP/2 listeners. */
  h2Port: number;
  url: string;
  h2Url: string;
  child: ChildProcess;
  /** Milliseconds from spawn() to the first 204 from /health. */
  startMs: number;
  stop(): Promise<void>;
}

/**
 * The one environment every server the bench starts gets: PATH and HOME only. The
 * bench's own environment may carry NODE_OPTIONS or NODE_EXTRA_CA_CERTS (set on
 * this machine), which would slow or change whichever process inherits them.
 */
export function serverEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...extra };
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** One raw GET /health; resolves with the status code, rejects when nobody listens yet. */
function probeHealth(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: "127.0.0.1", noDelay: true });
    let buf = "";
    sock.once("error", reject);
    sock.once("connect", () => sock.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) {
        sock.destroy();
        resolve(Number(m[1]));
      }
    });
    sock.once("close", () => reject(new Error("closed before a status line")));
  });
}

/** Polls /health every millisecond until it answers 204; returns when it did. */
export async function waitHealthy(port: number, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before /health answered`);
    try {
      if ((await probeHealth(port)) === 204) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`/health did not answer 204 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function stopper(child: ChildProcess, cleanup: () => void): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    }
    cleanup();
  };
}

/**
 * Which build of the daemon runs: the single executable users deploy
 * (release/envd), the bundle it is made from (node release/envd.cjs), or the
 * compiled sources (node dist/main.js, what `npm start` runs).
 */
export type DaemonBuild = "sea" | "bundle" | "dist";

/** The build every figure uses unless --daemon says otherwise: what ships. */
export let defaultDaemonBuild: DaemonBuild = "sea";

/** Changes the build {@link startDaemon} runs by default (the --daemon flag). */
export function setDefaultDaemonBuild(build: DaemonBuild): void {
  defaultDaemonBuild = build;
}

/** The file a build runs, relative to the repository root. */
export function daemonFile(build: DaemonBuild): string {
  return { sea: "release/envd", bundle: "release/envd.cjs", dist: "dist/main.js" }[build];
}

/** The command line (without the daemon's own flags) for a build; throws when it was not built. */
export function daemonCommand(build: DaemonBuild, nodeArgs: string[] = []): string[] {
  const file = daemonFile(build);
  if (!existsSync(join(ROOT, file))) throw new Error(`${file} is missing: run ${build === "dist" ? "npx tsc -p tsconfig.json" : "npm run build:release"} first`);
  if (build === "sea") {
    if (nodeArgs.length) throw new Error("node flags need --daemon dist or bundle (the single executable takes none)");
    return [join(ROOT, file)];
  }
  return [process.execPath, ...nodeArgs, join(ROOT, file)];
}

/** Options for {@link startDaemon}. */
export interface DaemonStartOptions {
  /** Extra node flags, e.g. ["--cpu-prof", "--cpu-prof-dir", dir] (not for the single executable). */
  nodeArgs?: string[];
  args?: string[];
  env?: Record<string, string>;
  build?: DaemonBuild;
}

/**
 * Starts the daemon as the bench's user (root) on a free port, with its default
 * settings (info logs go to a file, as they would to a log collector).
 */
export async function startDaemon(opts: DaemonStartOptions = {}): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "envd-bench-"));
  const logFd = openSync(join(dir, "daemon.log"), "w");
  const t0 = process.hrtime.bigint();
  const cmd = daemonCommand(opts.build ?? defaultDaemonBuild, opts.nodeArgs);
  const child = spawn(cmd[0]!, [...cmd.slice(1), "--port", String(port), "--listen", "127.0.0.1", "--run-dir", join(dir, "run"), ...(opts.args ?? [])], {
    env: serverEnv(opts.env),
    stdio: ["ignore", logFd, logFd],
  });
  closeSync(logFd);
  try {
    await waitHealthy(port, child);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const url = `http://127.0.0.1:${port}`;
  return { name: "envd-ts", pid: child.pid!, port, h2Port: port, url, h2Url: url, child, startMs, stop: stopper(child, () => rmSync(dir, { recursive: true, force: true })) };
}

/** Starts bench/servers/bare-health.mjs: a bare http.createServer answering /health. */
export async function startBareServer(): Promise<Server> {
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [join(ROOT, "bench/servers/bare-health.mjs"), String(port)], { env: serverEnv(), stdio: ["ignore", "ignore", "inherit"] });
  await waitHealthy(port, child);
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const url = `http://127.0.0.1:${port}`;
  return { name: "bare node http", pid: child.pid!, port, h2Port: port, url, h2Url: url, child, startMs, stop: stopper(child, () => {}) };
}

/**
 * Starts the minimal Node server (bench/servers/baseline-server.ts): the same wire
 * for /files and Filesystem Stat/ListDir with none of the daemon's extras.
 * HTTP/1.1 on one port, h2c on another.
 */
export async function startBaselineServer(opts: { nodeArgs?: string[] } = {}): Promise<Server> {
  const port = await freePort();
  const h2Port = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), "--import", "tsx", join(ROOT, "bench/servers/baseline-server.ts"), String(port), String(h2Port)], {
    cwd: ROOT,
    env: serverEnv(),
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitHealthy(port, child);
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return {
    name: "minimal node server",
    pid: child.pid!,
    port,
    h2Port,
    url: `http://127.0.0.1:${port}`,
    h2Url: `http://127.0.0.1:${h2Port}`,
    child,
    startMs,
    stop: stopper(child, () => {}),
  };
}
