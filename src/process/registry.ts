import type { CgroupManager } from "../limits/cgroup.js";
import type { Logger } from "../log.js";
import { processAddon } from "./native.js";
import type { ExitInfo } from "./exit-status.js";
import { ManagedProcess, type ProcessHooks } from "./managed-process.js";
import type { ProcessSpec } from "./process-spec.js";

/** How long E2B keeps the end of an exited process for a late Connect. */
export const RETAINED_EXIT_MS = 30_000;
/** Output of finished processes is kept for replay while the total stays under this. */
export const FINISHED_OUTPUT_BUDGET = 64 * 1024 * 1024;
/** After this much output has streamed through, freed heap is handed back (see trimSoon). */
const TRIM_AFTER_BYTES = 32 * 1024 * 1024;
const TRIM_DELAY_MS = 1000;
/** Daemon shutdown: SIGTERM, then this long before SIGKILL. */
const SHUTDOWN_TERM_GRACE_MS = 2000;

/** A by-pid or by-tag lookup, as process.ProcessSelector and envdts.v1.ProcessRef carry them. */
export type Selector = { pid: number } | { tag: string } | { id: number };

interface RetainedExit {
  proc: ManagedProcess;
  pid: number;
  exit: ExitInfo;
  expiresAt: number;
}

export interface RegistryLimits {
  outputBufferBytes: number;
  historyTtlSeconds: number;
  historyMaxEntries: number;
}

/**
 * The one place process state lives: live processes by pid (what E2B's API
 * sees), every unfinished process by id (restarts included), the 30 s retained
 * exits of E2B's Connect, and the history of finished processes.
 */
export class ProcessRegistry {
  private nextId = 1;
  private live = new Map<number, ManagedProcess>();
  private active = new Map<number, ManagedProcess>();
  private retained = new Map<number, RetainedExit>();
  /** Finished processes, oldest finish first. */
  private history: ManagedProcess[] = [];
  private sweeper: NodeJS.Timeout;
  private closing = false;
  private outputSinceTrim = 0;
  private trimTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: RegistryLimits,
    private readonly log: Logger,
    private readonly cgroups: CgroupManager,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 5000);
    this.sweeper.unref();
  }

  private readonly hooks: ProcessHooks = {
    runStarted: (proc, pid) => {
      this.live.set(pid, proc);
      // A reused pid or tag must not serve an older process's end (E2B does the same).
      this.retained.delete(pid);
      if (proc.tag !== undefined) for (const [k, r] of this.retained) if (r.proc.tag === proc.tag) this.retained.delete(k);
    },
    runEnded: (proc, pid, exit) => {
      if (this.live.get(pid) === proc) this.live.delete(pid);
      this.trimSoon(proc.ring.total);
      this.retained.set(pid, { proc, pid, exit, expiresAt: Date.now() + RETAINED_EXIT_MS });
    },
    finished: (proc) => {
      this.active.delete(proc.id);
      if (this.limits.historyMaxEntries > 0 && this.limits.historyTtlSeconds > 0) this.history.push(proc);
      else proc.ring.release();
      this.sweep();
    },
  };

  /** Creates a process record (not yet launched). */
  create(spec: ProcessSpec): ManagedProcess {
    if (this.closing) throw new Error("daemon is shutting down");
    const proc = new ManagedProcess(this.nextId++, spec, this.hooks, this.log, this.cgroups);
    this.active.set(proc.id, proc);
    return proc;
  }

  /** A process whose current run is alive, by pid or tag (E2B's getProcess). */
  findLive(sel: Selector): ManagedProcess | undefined {
    if ("pid" in sel) return this.live.get(sel.pid);
    if ("tag" in sel) {
      let found: ManagedProcess | undefined;
      for (const p of this.live.values()) if (p.tag === sel.tag && (!found || p.id > found.id)) found = p;
      return found;
    }
    const p = this.active.get(sel.id);
    return p?.isRunning ? p : undefined;
  }

  /** The retained end of a process that exited less than 30 s ago (E2B's Connect fallback). */
  findRetained(sel: Selector): { pid: number; exit: ExitInfo } | undefined {
    const now = Date.now();
    if ("pid" in sel) {
      const r = this.retained.get(sel.pid);
      return r && r.expiresAt > now ? r : undefined;
    }
    if (!("tag" in sel)) return undefined;
    let found: RetainedExit | undefined;
    for (const r of this.retained.values()) if (r.proc.tag === sel.tag && r.expiresAt > now && (!found || r.expiresAt > found.expiresAt)) found = r;
    return found;
  }

  /** Any process, running first, then the most recently finished match. */
  find(sel: Selector): ManagedProcess | undefined {
    if ("id" in sel) return this.active.get(sel.id) ?? this.history.find((p) => p.id === sel.id);
    const live = this.findLive(sel);
    if (live) return live;
    const match = (p: ManagedProcess) => ("pid" in sel ? p.runs.some((r) => r.pid === sel.pid) : p.tag === sel.tag);
    let best: ManagedProcess | undefined;
    for (const p of this.active.values()) if (match(p) && (!best || p.id > best.id)) best = p;
    if (best) return best;
    for (let i = this.history.length - 1; i >= 0; i--) if (match(this.history[i]!)) return this.history[i];
    return undefined;
  }

  /** Whether the daemon is shutting down (no new processes). */
  get isClosing(): boolean {
    return this.closing;
  }

  /** Processes with a live run (what E2B's List shows). */
  liveProcesses(): { pid: number; proc: ManagedProcess }[] {
    return [...this.live.entries()].map(([pid, proc]) => ({ pid, proc }));
  }

  /** Unfinished processes (running, starting, waiting to restart), oldest first. */
  activeProcesses(): ManagedProcess[] {
    return [...this.active.values()];
  }

  /** Finished processes still in the history, latest finish first. */
  finishedProcesses(): ManagedProcess[] {
    this.sweep();
    return [...this.history].reverse();
  }

  /**
   * A large transfer leaves the malloc heap big and mostly free, and every later
   * spawn's fork() pays for copying its page tables (500 spawns took 6x longer
   * after a 256 MiB stream). Hand the free pages back once the garbage is gone.
   */
  private trimSoon(outputTotal: number): void {
    this.outputSinceTrim += outputTotal;
    if (this.outputSinceTrim < TRIM_AFTER_BYTES || this.trimTimer) return;
    this.trimTimer = setTimeout(() => {
      this.trimTimer = undefined;
      this.outputSinceTrim = 0;
      try {
        processAddon().processTrimMemory();
      } catch {
        /* an old addon build: nothing to trim with */
      }
    }, TRIM_DELAY_MS);
    this.trimTimer.unref();
  }

  /** Applies the history limits (age, count) and the output budget of finished processes. */
  private sweep(): void {
    const now = Date.now();
    for (const [pid, r] of this.retained) if (r.expiresAt <= now) this.retained.delete(pid);
    const ttlMs = this.limits.historyTtlSeconds * 1000;
    let drop = 0;
    while (drop < this.history.length && (this.history.length - drop > this.limits.historyMaxEntries || now - (this.history[drop]!.finishedAt ?? now) > ttlMs)) drop++;
    if (drop > 0) for (const p of this.history.splice(0, drop)) p.ring.release();
    let held = 0;
    for (let i = this.history.length - 1; i >= 0; i--) {
      const ring = this.history[i]!.ring;
      held += ring.heldBytes();
      if (held > FINISHED_OUTPUT_BUDGET) ring.release();
    }
  }

  /** Daemon shutdown: SIGTERM every tree, SIGKILL after a grace, and wait for every end to be emitted. */
  async closeAll(opts: { keepRunning?: boolean } = {}): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    clearTimeout(this.trimTimer);
    if (opts.keepRunning) {
      const live = this.liveProcesses().length;
      if (live) this.log.info({ count: live }, "leaving processes running (--keep-processes-on-stop)");
      return;
    }
    const procs = this.activeProcesses();
    for (const p of procs) p.beginShutdown();
    await Promise.all(procs.map((p) => p.waitFinished(SHUTDOWN_TERM_GRACE_MS)));
    const left = procs.filter((p) => !p.isFinished);
    if (left.length) this.log.info({ count: left.length }, "processes ignored SIGTERM; killing");
    await Promise.all(left.map((p) => p.forceShutdown()));
    await Promise.all(left.map((p) => p.waitFinished(1000)));
  }
}
