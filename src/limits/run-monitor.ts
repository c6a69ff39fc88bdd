import type { ProcessCgroup } from "./cgroup.js";
import { foldExitRusage, foldUsage, procUsage, type ExitRusage, type ResourceUsage } from "./usage.js";

/** How often a CPU time limit is checked. */
export const CPU_CHECK_MS = 50;
/** How often a run is sampled for its usage (peaks that the kernel does not keep, e.g. tasks on v1, memory without a cgroup). */
export const PROC_SAMPLE_MS = 1000;
/** The first /proc sample comes sooner, so short commands get one. */
const FIRST_PROC_SAMPLE_MS = 100;

/** What a run's monitor watches. */
export interface RunMonitorOptions {
  cgroup: ProcessCgroup | undefined;
  /** The command's pid (not a PTY keeper). */
  leaderPid: number;
  cpuTimeMs: number | undefined;
  /** Live pids of the tree besides the leader; only used for a CPU limit without a cgroup. */
  otherTreePids(): number[];
  /** Called once when the tree's CPU time passed cpuTimeMs. */
  onCpuExceeded(usedMs: number): void;
  /**
   * Sample at once, so that a run too short for the first timed sample reports something. Not
   * needed when its exit brings the kernel's account (rusage), and it would delay the start event.
   */
  sampleAtStart: boolean;
}

/**
 * Measures one run: from its cgroup when it has one (the whole tree, read on
 * demand), else by sampling the leader in /proc while it lives. Enforces the
 * CPU time limit by polling, since no kernel mechanism limits a tree's total
 * CPU time (RLIMIT_CPU is per process, in whole seconds).
 */
export class RunMonitor {
  private last: ResourceUsage | undefined;
  private cpuTimer: NodeJS.Timeout | undefined;
  private sampleTimer: NodeJS.Timeout | undefined;
  private exceeded = false;
  private finished: ResourceUsage | undefined;

  constructor(private readonly o: RunMonitorOptions) {}

  start(): void {
    if (this.o.cpuTimeMs !== undefined) {
      this.cpuTimer = setInterval(() => this.checkCpu(), CPU_CHECK_MS);
      this.cpuTimer.unref();
    }
    if (this.o.sampleAtStart) this.sample();
    this.sampleTimer = setTimeout(() => {
      this.sample();
      this.sampleTimer = setInterval(() => this.sample(), PROC_SAMPLE_MS);
      this.sampleTimer.unref();
    }, FIRST_PROC_SAMPLE_MS);
    this.sampleTimer.unref();
  }

  /** CPU time of the tree in µs as far as it can be seen. */
  private cpuUs(): number {
    const cg = this.o.cgroup?.cpuUsageUs();
    if (cg !== undefined) return cg;
    let total = 0;
    for (const pid of [this.o.leaderPid, ...this.o.otherTreePids()]) {
      const u = procUsage(pid);
      if (u) total += u.cpuUserUs + u.cpuSystemUs;
    }
    if (this.last) total = Math.max(total, this.last.cpuUserUs + this.last.cpuSystemUs);
    return total;
  }

  private checkCpu(): void {
    if (this.exceeded || this.o.cpuTimeMs === undefined) return;
    const used = this.cpuUs();
    if (used > this.o.cpuTimeMs * 1000) {
      this.exceeded = true;
      clearInterval(this.cpuTimer);
      this.o.onCpuExceeded(Math.round(used / 1000));
    }
  }

  private sample(): ResourceUsage | undefined {
    const u = this.o.cgroup ? this.o.cgroup.usage() : procUsage(this.o.leaderPid);
    if (u) this.last = foldUsage(this.last, u);
    return this.last;
  }

  /** Usage now (for GetProcess). */
  current(): ResourceUsage | undefined {
    if (this.finished) return this.finished;
    return this.sample();
  }

  /** Stops watching and returns the final usage (read from the cgroup before it is removed, with the exit's rusage when there is one). */
  finish(rusage?: ExitRusage): ResourceUsage | undefined {
    if (this.finished) return this.finished;
    clearInterval(this.cpuTimer);
    clearTimeout(this.sampleTimer);
    clearInterval(this.sampleTimer);
    if (this.o.cgroup) this.last = foldUsage(this.last, this.o.cgroup.usage());
    if (rusage) this.last = foldExitRusage(this.last, rusage);
    if (this.last) this.finished = { ...this.last, memoryCurrentBytes: 0, tasksCurrent: 0 };
    return this.finished;
  }
}
