import { spawn, type StdioOptions } from "node:child_process";
import { Socket } from "node:net";
import { constants } from "node:os";
import type { ChildEvents, ChildIO, ChildSpec } from "./child.js";
import { SpawnError } from "./child.js";
import type { RawExit } from "./exit-status.js";
import { commonLaunchOptions, launcherArgs, parseLaunchStatus, type LaunchFailure } from "./launcher.js";
import { closeQuietly, LAUNCHER_PATH, processAddon } from "./native.js";
import { claimChild, reaperRunning } from "../system/child-reaper.js";
import type { StreamKind } from "./output-ring.js";

const SIGNALS = constants.signals as unknown as Record<string, number>;

/** Reads a pipe to EOF and hands over everything it carried. */
function readAll(fd: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = new Socket({ fd, readable: true, writable: false });
    let text = "";
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => (text += d));
    sock.on("error", () => {});
    sock.on("close", () => resolve(text));
  });
}

/**
 * Starts a non-PTY child through the launcher with real pipes (Node's own stdio
 * pipes are socketpairs, on which `> /dev/stdout` fails). Resolves once the
 * launcher reported exec success or failure.
 */
export async function spawnPipeChild(spec: ChildSpec): Promise<ChildIO> {
  const addon = processAddon();
  const opened: number[] = [];
  const pipe = (): [number, number] => {
    const p = addon.processPipe();
    opened.push(p[0], p[1]);
    return p;
  };
  let stdinPipe: [number, number] | undefined;
  let outPipe: [number, number] | undefined;
  let errPipe: [number, number] | undefined;
  let status: [number, number];
  try {
    stdinPipe = spec.stdin ? pipe() : undefined;
    outPipe = spec.captureStdout || (spec.mergeStderr && spec.captureStderr) ? pipe() : undefined;
    errPipe = spec.captureStderr && !spec.mergeStderr ? pipe() : undefined;
    status = pipe();
  } catch (err) {
    for (const fd of opened) closeQuietly(fd);
    throw new SpawnError(`error creating pipes: ${(err as Error).message}`, undefined);
  }

  const stdoutTarget = spec.captureStdout ? outPipe![1] : -1;
  const stderrTarget = !spec.captureStderr ? -1 : spec.mergeStderr ? outPipe![1] : errPipe![1];
  const fds = [stdinPipe ? stdinPipe[0] : -1, stdoutTarget, stderrTarget, status[1]];
  const args = launcherArgs({ ...commonLaunchOptions(spec), statusFd: 3, setsid: true }, spec.command);

  let launched: Launched;
  try {
    launched = await startLauncher(args, fds, spec.env);
  } catch (err) {
    closeQuietly(status[0]);
    closeQuietly(stdinPipe?.[1]);
    closeQuietly(outPipe?.[0]);
    closeQuietly(errPipe?.[0]);
    throw new SpawnError(`error starting launcher: ${(err as Error).message}`, undefined);
  } finally {
    // The child has its copies; ours would hide EOF.
    closeQuietly(stdinPipe?.[0]);
    closeQuietly(outPipe?.[1]);
    closeQuietly(errPipe?.[1]);
    closeQuietly(status[1]);
  }

  const failure = parseLaunchStatus(await readAll(status[0]));
  return new PipeChild(launched.pid, failure, stdinPipe?.[1], outPipe?.[0], errPipe?.[0], launched.whenExited, launched.exitReportsUsage);
}

/** A started launcher: its pid, and a way to hear of its exit (once). */
interface Launched {
  pid: number;
  whenExited(cb: (raw: RawExit) => void): void;
  /** Its exit will carry wait4's rusage (the daemon's reaper collects it). */
  exitReportsUsage: boolean;
}

/** Calls back with `raw` once it is known, whether the callback comes before or after. */
function exitLatch(): { settle(raw: RawExit): void; whenExited(cb: (raw: RawExit) => void): void } {
  let exit: RawExit | undefined;
  let waiting: ((raw: RawExit) => void) | undefined;
  return {
    settle(raw) {
      exit = raw;
      waiting?.(raw);
    },
    whenExited(cb) {
      if (exit) cb(exit);
      else waiting = cb;
    },
  };
}

function envList(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out.push(`${k}=${v}`);
  return out;
}

/**
 * Starts the launcher with child descriptors 0..n-1 = `fds` (-1: /dev/null). With the daemon's
 * reaper running, without fork() (native/src/spawn.c: posix_spawn, and the reaper reports the
 * exit); otherwise through child_process.spawn.
 */
async function startLauncher(args: string[], fds: number[], env: NodeJS.ProcessEnv): Promise<Launched> {
  const latch = exitLatch();
  if (reaperRunning()) {
    const pid = processAddon().processSpawn(LAUNCHER_PATH, [LAUNCHER_PATH, ...args], envList(env), fds, "/");
    claimChild(pid, (exit) => latch.settle(exit));
    return { pid, whenExited: latch.whenExited, exitReportsUsage: true };
  }
  const stdio: StdioOptions = fds.map((fd) => (fd < 0 ? "ignore" : fd));
  const child = spawn(LAUNCHER_PATH, args, { stdio, env, cwd: "/" });
  child.once("exit", (code, signal) => latch.settle({ code, signal: signal ? (SIGNALS[signal] ?? 0) : null }));
  if (child.pid === undefined) throw await new Promise<Error>((resolve) => child.once("error", resolve));
  child.on("error", () => {});
  return { pid: child.pid, whenExited: latch.whenExited, exitReportsUsage: false };
}

class PipeChild implements ChildIO {
  readonly isPty = false;
  readonly keeperPid = undefined;
  private stdin: Socket | undefined;
  private readers: { kind: StreamKind; sock: Socket }[] = [];
  private pendingReaderFds: { kind: StreamKind; fd: number }[] = [];
  readonly sessionId: number;

  constructor(
    readonly pid: number,
    readonly launchFailure: LaunchFailure | undefined,
    stdinFd: number | undefined,
    stdoutFd: number | undefined,
    stderrFd: number | undefined,
    private readonly whenExited: (cb: (raw: RawExit) => void) => void,
    readonly exitReportsUsage: boolean,
  ) {
    this.sessionId = pid;
    if (stdinFd !== undefined) {
      this.stdin = new Socket({ fd: stdinFd, readable: false, writable: true });
      this.stdin.on("error", () => {});
    }
    if (stdoutFd !== undefined) this.pendingReaderFds.push({ kind: "stdout", fd: stdoutFd });
    if (stderrFd !== undefined) this.pendingReaderFds.push({ kind: "stderr", fd: stderrFd });
  }

  start(events: ChildEvents): void {
    let open = this.pendingReaderFds.length;
    let ended = false;
    const oneClosed = () => {
      if (--open === 0 && !ended) {
        ended = true;
        events.outputEnd();
      }
    };
    for (const { kind, fd } of this.pendingReaderFds) {
      const sock = new Socket({ fd, readable: true, writable: false });
      sock.on("data", (d: Buffer) => events.data(kind, d));
      sock.on("error", () => {});
      sock.once("close", oneClosed);
      this.readers.push({ kind, sock });
    }
    this.pendingReaderFds = [];
    if (open === 0) {
      ended = true;
      queueMicrotask(() => events.outputEnd());
    }
    this.whenExited((raw) => events.exit(raw));
  }

  pause(): void {
    for (const r of this.readers) r.sock.pause();
  }

  resume(): void {
    for (const r of this.readers) r.sock.resume();
  }

  get stdinOpen(): boolean {
    return this.stdin !== undefined && !this.stdin.destroyed;
  }

  writeStdin(data: Buffer): Promise<void> {
    const sock = this.stdin;
    if (!sock || sock.destroyed) return Promise.reject(new Error("stdin not enabled or closed"));
    if (data.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      sock.write(data, (err) => (err ? reject(new Error(`error writing to stdin of process '${this.pid}': ${err.message}`)) : resolve()));
    });
  }

  closeStdin(): Promise<void> {
    const sock = this.stdin;
    this.stdin = undefined;
    if (!sock || sock.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      sock.once("close", () => resolve());
      sock.end();
      // A child that never reads would keep end() waiting on unflushed data.
      setTimeout(() => sock.destroy(), 1000).unref();
    });
  }

  writePty(): void {
    throw new Error("tty not assigned to process — input should be written to the stdin, not the tty");
  }

  resize(): void {
    throw new Error("tty not assigned to process");
  }

  abandonOutput(): void {
    for (const r of this.readers) r.sock.destroy();
    for (const { fd } of this.pendingReaderFds) closeQuietly(fd);
    this.pendingReaderFds = [];
  }

  dispose(): void {
    this.abandonOutput();
    this.stdin?.destroy();
    this.stdin = undefined;
  }
}
