import { ChildProcess } from "node:child_process";
import type { ExitRusage } from "../limits/usage.js";
import type { Logger } from "../log.js";
import { native } from "../native.js";
import { metrics } from "./metrics-registry.js";

interface ReaperAddon {
  processPeekZombie(): number;
  /** wait4(pid, WNOHANG) once reaped: exit code, terminating signal, CPU time and storage I/O; null while it runs or when not our child. */
  processReap(pid: number): [code: number | null, signal: number | null, userUs: number, systemUs: number, inBlocks: number, outBlocks: number] | null;
  processSetSubreaper(on: boolean): void;
}

/** How a claimed child ended: its exit code, or the number of the signal that ended it. */
export interface ClaimedExit {
  code: number | null;
  signal: number | null;
  rusage: ExitRusage;
}

/** Children started without libuv (native/src/spawn.c), whose exits the reaper delivers. */
const claimed = new Map<number, (exit: ClaimedExit) => void>();

let running: ChildReaper | undefined;

/** Whether a reaper runs, so that {@link claimChild} will hear of exits. */
export function reaperRunning(): boolean {
  return running !== undefined;
}

/**
 * Hands `pid`'s exit to `onExit` when the reaper collects it; call right after starting the
 * child, in the same turn of the event loop (the reaper collects on a later turn).
 */
export function claimChild(pid: number, onExit: (exit: ClaimedExit) => void): void {
  claimed.set(pid, onExit);
  running?.scheduleSweep();
}

/** Pids another part of the daemon waits for by pid (libuv, node-pty's wait thread), with a hold count. */
const held = new Map<number, number>();

/**
 * Marks `pid` as waited for elsewhere, so the reaper leaves its zombie alone; call the returned
 * function once that waiter has collected it. Every ChildProcess is held automatically.
 */
export function holdChild(pid: number): () => void {
  held.set(pid, (held.get(pid) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (held.get(pid) ?? 1) - 1;
    if (n <= 0) held.delete(pid);
    else held.set(pid, n);
  };
}

let spawnPatched = false;

/**
 * libuv reaps each ChildProcess with waitpid(pid); if we reaped it first its exit status would be
 * lost. Every spawn (child_process.spawn, exec, execFile, fork) goes through ChildProcess#spawn,
 * so holding the pid there covers them all, including those of libraries.
 */
function holdEveryChildProcess(): void {
  if (spawnPatched) return;
  spawnPatched = true;
  const proto = ChildProcess.prototype as unknown as { spawn(this: ChildProcess, ...args: unknown[]): unknown };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
    const result = spawn.apply(this, args);
    if (this.pid !== undefined) this.once("exit", holdChild(this.pid));
    return result;
  };
}

const RETRY_MIN_MS = 20;
const RETRY_MAX_MS = 1000;

/**
 * Collects exited children nobody else waits for: orphaned grandchildren of our commands,
 * which the kernel hands to us when we are PID 1 or a child subreaper. Without it they stay
 * zombies and fill the pid table. Runs on SIGCHLD; a zombie held by someone else is left to
 * them, and the reaper looks again shortly after (the kernel reports zombies in order, so one
 * held zombie hides those behind it until its owner reaps it).
 */
export class ChildReaper {
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;
  private count = 0;
  private readonly onSignal = () => this.schedule();

  private constructor(
    private readonly addon: ReaperAddon,
    private readonly log: Logger,
  ) {}

  /**
   * Starts reaping. As PID 1 orphans come to us anyway; otherwise `subreaper` asks the kernel to
   * make us their parent too (PR_SET_CHILD_SUBREAPER), so our commands' orphans are reaped here
   * and stay under the daemon instead of leaking to the host's init.
   */
  static start(log: Logger, opts: { subreaper: boolean }): ChildReaper {
    holdEveryChildProcess();
    const reaper = new ChildReaper(native() as unknown as ReaperAddon, log);
    if (opts.subreaper && process.pid !== 1) {
      try {
        reaper.addon.processSetSubreaper(true);
      } catch (err) {
        log.warn({ err: (err as Error).message }, "cannot become a child subreaper; orphans of commands go to init");
      }
    }
    process.on("SIGCHLD", reaper.onSignal);
    running = reaper;
    metrics.registerCounter("envd_orphans_reaped_total", "Orphaned processes the daemon reaped as PID 1 or child subreaper", () => reaper.reaped);
    reaper.schedule();
    return reaper;
  }

  /** Orphans reaped so far. */
  get reaped(): number {
    return this.count;
  }

  /** Whether the daemon has any child process left (running or not yet reaped). */
  hasChildren(): boolean {
    return this.addon.processPeekZombie() !== -1;
  }

  /** Reaps every exited child that nobody else waits for; returns how many. */
  sweep(): number {
    let n = 0;
    for (;;) {
      let pid: number;
      try {
        pid = this.addon.processPeekZombie();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "waitid failed");
        return n;
      }
      if (pid <= 0) {
        this.retryMs = RETRY_MIN_MS;
        return n;
      }
      if (held.has(pid)) {
        this.retryLater();
        return n;
      }
      const onExit = claimed.get(pid);
      if (onExit) {
        const status = this.addon.processReap(pid);
        if (!status) return n;
        claimed.delete(pid);
        const [code, signal, userUs, systemUs, inBlocks, outBlocks] = status;
        onExit({ code, signal, rusage: { userUs, systemUs, readBytes: inBlocks * 512, writeBytes: outBlocks * 512 } });
        continue;
      }
      if (this.addon.processReap(pid)) {
        n++;
        this.count++;
        this.log.debug({ pid }, "reaped orphan");
      } else return n;
    }
  }

  stop(): void {
    this.stopped = true;
    if (running === this) running = undefined;
    process.off("SIGCHLD", this.onSignal);
    clearTimeout(this.timer);
  }

  /** Sweeps soon (a child just claimed may already have exited). */
  scheduleSweep(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    // Coalesces a burst of SIGCHLDs into one sweep, after libuv has reaped its own.
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.sweep();
    });
  }

  private retryLater(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.schedule();
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
