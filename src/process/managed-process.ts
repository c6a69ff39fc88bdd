import { Code, ConnectError } from "@connectrpc/connect";
import type { CgroupManager, ProcessCgroup } from "../limits/cgroup.js";
import { RunMonitor } from "../limits/run-monitor.js";
import type { ResourceUsage } from "../limits/usage.js";
import type { Logger } from "../log.js";
import type { ChildIO, ChildSpec } from "./child.js";
import { SpawnError } from "./child.js";
import { isolationLaunchOptions, stageText } from "./isolation-launch.js";
import { ISOLATION_STAGES } from "./launcher.js";
import type { ProcEvent } from "./events.js";
import { errnoText, exitInfo, failedToStart, type ExitInfo, type RawExit } from "./exit-status.js";
import { OutputRing, type StreamKind } from "./output-ring.js";
import type { ProcessSpec, ProcessStateName, RunRecord } from "./process-spec.js";
import { restartDelayMs, wantsRestart } from "./restart-policy.js";
import { SIGKILL, SIGTERM } from "./signals.js";
import { timerDelay } from "../system/timer-delay.js";
import { spawnPipeChild } from "./spawn-pipe.js";
import { spawnPtyChild } from "./spawn-pty.js";
import { QUEUE_HIGH_WATER, QUEUE_LOW_WATER, Subscription, type SubscriptionOwner } from "./subscription.js";
import { killTree, liveTreeMembers, readStat, signalGroup, signalTree, type TreeRoot } from "./tree.js";

/** SIGXCPU: what RLIMIT_CPU's soft limit sends. */
const SIGXCPU = 24;

function rootOf(run: ActiveRun): TreeRoot {
  const { child, cgroup } = run;
  return { leader: child.pid, session: child.sessionId, exclude: child.keeperPid, cgroupMembers: cgroup ? () => cgroup.members() : undefined };
}

function cgLimitsOf(spec: ProcessSpec): boolean {
  return spec.execution.cgroupLimits !== undefined;
}

/** Largest data event for pipes and for PTYs (E2B's read sizes). */
export const PIPE_CHUNK = 32 * 1024;
export const PTY_CHUNK = 16 * 1024;
/**
 * Runs kept per process for ProcessInfo; older ones are dropped (restart_count still counts every
 * run), so a process restarting for days does not grow without bound.
 */
export const MAX_RUN_RECORDS = 100;
/** After a kill, how long output may stay open once the leader is gone (an escaped child holding the pipe). */
const KILL_LINGER_MS = 500;

/** How the registry learns about a process's runs. */
export interface ProcessHooks {
  runStarted(proc: ManagedProcess, pid: number): void;
  runEnded(proc: ManagedProcess, pid: number, exit: ExitInfo): void;
  finished(proc: ManagedProcess): void;
}

type KillReason = "timeout" | "signal" | "shutdown" | "cpu_limit";

interface ActiveRun {
  record: RunRecord;
  child: ChildIO;
  raw?: RawExit;
  outputDone: boolean;
  ended: boolean;
  killReason?: KillReason;
  execError?: string;
  linger?: NodeJS.Timeout;
  exitWaiters: (() => void)[];
  cgroup?: ProcessCgroup;
  monitor?: RunMonitor;
  /** CPU time when the limit was found exceeded. */
  cpuUsedMs?: number;
}

/**
 * One logical process: its runs (restarts included), its output ring and its
 * subscribers. Knows nothing of the wire; the RPC layer maps its events.
 */
export class ManagedProcess implements SubscriptionOwner {
  state: ProcessStateName = "starting";
  readonly ring: OutputRing;
  readonly runs: RunRecord[] = [];
  restartCount = 0;
  readonly startedAt = Date.now();
  finishedAt: number | undefined;
  lastExit: ExitInfo | undefined;
  /** Set once the process is final (no run, no restart pending). */
  finalEvent: Extract<ProcEvent, { kind: "exited" }> | undefined;

  private subs = new Set<Subscription>();
  private run: ActiveRun | undefined;
  private outputPaused = false;
  private stopRestarts = false;
  private timedOut = false;
  private shuttingDown = false;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private finishWaiters: (() => void)[] = [];
  private trackWarned = false;
  /** The cgroup directories of the current or last run (for ProcessInfo). */
  cgroupPaths: string[] = [];
  /** A PTY's size now: as started, then as last resized (a restart starts at it too). */
  ptySize: { cols: number; rows: number } | undefined;

  constructor(
    readonly id: number,
    readonly spec: ProcessSpec,
    private readonly hooks: ProcessHooks,
    private readonly log: Logger,
    private readonly cgroups: CgroupManager,
  ) {
    this.ring = new OutputRing(spec.outputBufferBytes);
    this.ptySize = spec.pty ? { ...spec.pty } : undefined;
  }

  /** Resizes the PTY of the current run (TIOCSWINSZ; the child gets SIGWINCH) and remembers the size. */
  resize(cols: number, rows: number): void {
    const child = this.run?.child;
    if (!this.isPty || !child) throw new Error("tty not assigned to process");
    child.resize(cols, rows);
    this.ptySize = { cols, rows };
  }

  /** The pid of the current run, or of the last one. */
  get pid(): number {
    return this.run?.record.pid ?? this.runs[this.runs.length - 1]?.pid ?? 0;
  }

  get tag(): string | undefined {
    return this.spec.tag;
  }

  get isPty(): boolean {
    return this.spec.pty !== undefined;
  }

  /** A run is alive (its end event not yet emitted). */
  get isRunning(): boolean {
    return this.run !== undefined;
  }

  get isFinished(): boolean {
    return this.finalEvent !== undefined;
  }

  /** Clients currently receiving this process's events (leak checks, metrics). */
  get subscriberCount(): number {
    return this.subs.size;
  }

  /** The current run's child; undefined between runs and after the end. */
  get child(): ChildIO | undefined {
    return this.run?.child;
  }

  /**
   * Starts the first run. Resolves once the command was exec'd or exec failed
   * (E2B reports that as exit 127/126 through the stream); rejects with a
   * ConnectError when the launcher could not set the child up (cwd, identity).
   */
  async launch(): Promise<void> {
    if (this.spec.timeoutMs > 0) {
      this.timeoutTimer = setTimeout(() => this.onTimeout(), timerDelay(this.spec.timeoutMs + this.spec.timeoutSlackMs));
    }
    const problem = await this.spawnRun();
    if (problem !== undefined) {
      this.lastExit = failedToStart(problem.message);
      this.finalize(0);
      throw problem;
    }
  }

  /** Spawns one run; returns the error when no run could be made of it. */
  private async spawnRun(): Promise<ConnectError | undefined> {
    const spec = this.spec;
    const cannotStart = `error starting process '${spec.command.join(" ")}'`;
    let cgroup: ProcessCgroup | undefined;
    const cgLimits = spec.execution.cgroupLimits;
    if (cgLimits) {
      // A PTY's keeper waits in the cgroup too; it is not the command's task to count.
      const limits = spec.pty && cgLimits.pidsMax !== undefined ? { ...cgLimits, pidsMax: cgLimits.pidsMax + 1 } : cgLimits;
      try {
        cgroup = this.cgroups.create(`${this.id}-${this.restartCount + 1}`, limits);
      } catch (err) {
        return new ConnectError(`${cannotStart}: ${(err as Error).message}`, Code.FailedPrecondition);
      }
      this.cgroupPaths = cgroup.paths;
    } else if (this.cgroups.version !== "none") {
      // Not a limit: a way to find the whole tree. Where it cannot be made, the launcher's subreaper does what it can.
      try {
        cgroup = this.cgroups.track(`${this.id}-${this.restartCount + 1}`);
        this.cgroupPaths = cgroup.paths;
      } catch (err) {
        if (!this.trackWarned) this.log.warn({ err: (err as Error).message, id: this.id }, "cannot track the process tree in a cgroup; using a subreaper");
        this.trackWarned = true;
      }
    }
    const removeCgroup = () => void cgroup?.remove().catch((err: Error) => this.log.warn({ err: err.message, id: this.id }, "cannot remove cgroup"));
    const childSpec: ChildSpec = {
      command: spec.command,
      env: spec.env,
      cwd: spec.cwd,
      identity: spec.switchIdentity ? spec.identity : undefined,
      isolation: isolationLaunchOptions(spec.execution, cgroup),
      pty: spec.pty ? this.ptySize : undefined,
      stdin: spec.stdin,
      captureStdout: spec.captureStdout,
      captureStderr: spec.captureStderr,
      mergeStderr: spec.mergeStderr,
    };
    let child: ChildIO;
    try {
      child = spec.pty ? await spawnPtyChild(childSpec) : await spawnPipeChild(childSpec);
    } catch (err) {
      removeCgroup();
      const msg = err instanceof SpawnError ? err.message : String(err);
      // Out of descriptors (EMFILE, ENFILE) is load the client can back off from, not a bad request.
      const code = /EMFILE|ENFILE|too many open files/i.test(msg) ? Code.ResourceExhausted : spec.pty ? Code.InvalidArgument : Code.Internal;
      return new ConnectError(spec.pty ? msg : `error starting process '${spec.command.join(" ")}': ${msg}`, code);
    }
    const failure = child.launchFailure;
    if (failure && failure.stage !== "exec") {
      // The launcher exits 125 by itself; nothing of it is shown.
      child.start({ data() {}, outputEnd() {}, exit() {} });
      child.abandonOutput();
      child.dispose();
      removeCgroup();
      if (ISOLATION_STAGES.has(failure.stage)) {
        return new ConnectError(`${cannotStart}: ${stageText(failure.stage, failure.errno)}: ${errnoText(failure.errno)}`, Code.FailedPrecondition);
      }
      if (failure.stage === "launcher") return new ConnectError(`error starting process '${spec.command.join(" ")}': the launcher exited before starting it`, Code.Internal);
      const what = failure.stage === "chdir" ? `chdir ${spec.cwd}` : failure.stage;
      const prefix = spec.pty
        ? `error starting pty with command '${spec.command.join(" ")}' in dir '${spec.cwd}' with '${spec.pty.cols}' cols and '${spec.pty.rows}' rows`
        : `error starting process '${spec.command.join(" ")}'`;
      return new ConnectError(`${prefix}: ${what}: ${errnoText(failure.errno)}`, Code.InvalidArgument);
    }
    const run: ActiveRun = {
      record: { pid: child.pid, startedAt: Date.now() },
      child,
      outputDone: false,
      ended: false,
      execError: failure ? `exec: ${spec.command[0]}: ${errnoText(failure.errno)}` : undefined,
      exitWaiters: [],
      cgroup,
    };
    run.monitor = new RunMonitor({
      // A tracking cgroup measures nothing on v1 (one hierarchy); a plain run's usage stays as it was.
      cgroup: cgLimits ? cgroup : undefined,
      leaderPid: child.pid,
      cpuTimeMs: spec.execution.limits.cpuTimeMs,
      otherTreePids: () => liveTreeMembers(rootOf(run)).filter((p) => p !== child.pid),
      onCpuExceeded: (usedMs) => this.onCpuExceeded(run, usedMs),
      sampleAtStart: !child.exitReportsUsage,
    });
    run.monitor.start();
    this.run = run;
    this.recordRun(run.record);
    this.state = "running";
    this.hooks.runStarted(this, child.pid);
    this.broadcast({ kind: "started", pid: child.pid, restartCount: this.restartCount });
    if (this.outputPaused) child.pause();
    child.start({
      data: (stream, data) => this.onData(stream, data),
      outputEnd: () => {
        run.outputDone = true;
        this.maybeEndRun(run);
      },
      exit: (raw) => {
        run.raw = raw;
        for (const w of run.exitWaiters.splice(0)) w();
        if (run.killReason) run.linger = setTimeout(() => run.child.abandonOutput(), KILL_LINGER_MS);
        this.maybeEndRun(run);
      },
    });
    // Timed out, shut down or stopped while the spawn was in flight.
    const unwanted: KillReason | undefined = this.timedOut ? "timeout" : this.shuttingDown ? "shutdown" : this.stopRestarts && this.restartCount > 0 ? "signal" : undefined;
    if (unwanted) {
      run.killReason = unwanted;
      void killTree(rootOf(run));
    }
    return undefined;
  }

  /** The tree used more CPU time than its limit: kill it, and remember why. */
  private onCpuExceeded(run: ActiveRun, usedMs: number): void {
    if (run.ended || run.killReason) return;
    run.killReason = "cpu_limit";
    run.cpuUsedMs = usedMs;
    this.log.info({ id: this.id, pid: run.record.pid, usedMs, limitMs: this.spec.execution.limits.cpuTimeMs }, "CPU time limit exceeded; killing the tree");
    void killTree(rootOf(run));
    if (run.raw) run.linger ??= setTimeout(() => run.child.abandonOutput(), KILL_LINGER_MS);
  }

  /** What the current run uses now, or what the last run used. */
  usage(): ResourceUsage | undefined {
    return this.run?.monitor?.current() ?? this.lastExit?.usage;
  }

  private onData(stream: StreamKind, data: Buffer): void {
    const max = stream === "pty" ? PTY_CHUNK : PIPE_CHUNK;
    for (let off = 0; off < data.length; off += max) {
      const chunk = this.ring.append(stream, off === 0 && data.length <= max ? data : data.subarray(off, off + max));
      this.broadcast({ kind: "data", chunk });
    }
    if (!this.outputPaused) {
      for (const s of this.subs) {
        if (s.queuedBytes > QUEUE_HIGH_WATER) {
          this.outputPaused = true;
          this.run?.child.pause();
          break;
        }
      }
    }
  }

  private broadcast(ev: ProcEvent): void {
    if (this.subs.size === 0) return;
    for (const s of [...this.subs]) s.push(ev);
  }

  /** @internal SubscriptionOwner */
  subscriberDrained(): void {
    this.maybeResume();
  }

  /** @internal SubscriptionOwner */
  removeSubscriber(sub: Subscription): void {
    this.subs.delete(sub);
    this.maybeResume();
  }

  private maybeResume(): void {
    if (!this.outputPaused) return;
    for (const s of this.subs) if (s.queuedBytes > QUEUE_LOW_WATER) return;
    this.outputPaused = false;
    this.run?.child.resume();
  }

  private maybeEndRun(run: ActiveRun): void {
    if (run.ended || !run.raw || !run.outputDone) return;
    run.ended = true;
    clearTimeout(run.linger);
    run.child.dispose();
    const usage = run.monitor?.finish(run.raw.rusage);
    const limits = this.spec.execution.limits;
    const cpuLimited = limits.cpuTimeMs !== undefined && (run.killReason === "cpu_limit" || run.raw.signal === SIGXCPU);
    const exit = exitInfo(run.raw, {
      timedOutAfterMs: run.killReason === "timeout" ? this.spec.timeoutMs : undefined,
      execError: run.execError,
      oomKilled: (usage?.oomKills ?? 0) > 0 && limits.memoryMaxBytes !== undefined ? { limitBytes: limits.memoryMaxBytes } : undefined,
      cpuLimit: cpuLimited ? { limitMs: limits.cpuTimeMs!, usedMs: run.cpuUsedMs } : undefined,
    });
    if (usage) exit.usage = usage;
    // Whatever is left of the tree goes with the cgroup when the process was limited (it owns
    // everything it started) or killed; a plain command's background processes live on, as in E2B.
    const dropCgroup = cgLimitsOf(this.spec) || run.killReason ? run.cgroup?.remove() : run.cgroup?.release();
    void dropCgroup?.catch((err: Error) => this.log.warn({ err: err.message, id: this.id }, "cannot remove cgroup"));
    run.record.finishedAt = Date.now();
    run.record.exit = exit;
    this.lastExit = exit;
    this.run = undefined;
    const stopped = this.stopRestarts || this.timedOut || run.killReason === "timeout" || run.killReason === "shutdown";
    const restart = !stopped && wantsRestart(this.spec.restart, exit, this.restartCount);
    const delay = restart ? restartDelayMs(this.spec.restart, this.restartCount) : 0;
    const ev = { kind: "exited" as const, pid: run.record.pid, exit, final: !restart, restartDelayMs: delay };
    if (!restart) this.finalEvent = ev;
    this.broadcast(ev);
    this.hooks.runEnded(this, run.record.pid, exit);
    this.log.info({ pid: run.record.pid, id: this.id, outcome: exit.outcome, status: exit.status, restart }, "process ended");
    if (restart) {
      this.state = "starting";
      this.restartTimer = setTimeout(() => void this.restart(), timerDelay(delay));
    } else this.finalize(run.record.pid);
  }

  private async restart(): Promise<void> {
    this.restartTimer = undefined;
    if (this.stopRestarts || this.timedOut) {
      if (!this.isFinished) this.finalize(this.pid);
      return;
    }
    this.restartCount++;
    const problem = await this.spawnRun();
    if (problem === undefined) return;
    // No child came of it: record a failed run and apply the policy again.
    const exit = failedToStart(problem.message);
    this.recordRun({ pid: 0, startedAt: Date.now(), finishedAt: Date.now(), exit });
    this.lastExit = exit;
    const restart = !this.stopRestarts && !this.timedOut && wantsRestart(this.spec.restart, exit, this.restartCount);
    const delay = restart ? restartDelayMs(this.spec.restart, this.restartCount) : 0;
    const ev = { kind: "exited" as const, pid: 0, exit, final: !restart, restartDelayMs: delay };
    if (!restart) this.finalEvent = ev;
    this.broadcast(ev);
    if (restart) this.restartTimer = setTimeout(() => void this.restart(), timerDelay(delay));
    else this.finalize(0);
  }

  private recordRun(record: RunRecord): void {
    this.runs.push(record);
    if (this.runs.length > MAX_RUN_RECORDS) this.runs.splice(0, this.runs.length - MAX_RUN_RECORDS);
  }

  /** Makes the process final: no run, no restart; tells the registry. */
  private finalize(lastPid: number): void {
    clearTimeout(this.timeoutTimer);
    clearTimeout(this.restartTimer);
    this.timeoutTimer = undefined;
    this.restartTimer = undefined;
    this.finishedAt = Date.now();
    this.state = this.lastExit?.outcome === "failed_to_start" ? "error" : "stopped";
    if (!this.finalEvent && this.lastExit) {
      this.finalEvent = { kind: "exited", pid: lastPid, exit: this.lastExit, final: true, restartDelayMs: 0 };
      this.broadcast(this.finalEvent);
    }
    for (const s of [...this.subs]) s.finish();
    this.subs.clear();
    this.hooks.finished(this);
    for (const w of this.finishWaiters.splice(0)) w();
  }

  private onTimeout(): void {
    this.timeoutTimer = undefined;
    this.timedOut = true;
    this.stopRestarts = true;
    const run = this.run;
    if (run) {
      run.killReason = "timeout";
      void killTree(rootOf(run));
      if (run.raw) run.linger ??= setTimeout(() => run.child.abandonOutput(), KILL_LINGER_MS);
      return;
    }
    if (this.restartTimer && this.lastExit) {
      // Timed out while waiting to restart: the last run's end becomes final.
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      this.lastExit = { ...this.lastExit, outcome: "timed_out", error: `timed out after ${this.spec.timeoutMs} ms (${this.lastExit.status})` };
      this.finalize(this.pid);
    }
  }

  /**
   * Subscribes to events. `from` replays held output first: from an offset
   * (clamped to the oldest held byte) or from the oldest byte. A finished
   * process yields its replay and its final exit.
   */
  subscribe(untilRunEnd: boolean, from?: { offset: number } | { oldest: true }): { sub: Subscription; offset: number; dropped: number } {
    const sub = new Subscription(this, untilRunEnd);
    let offset = this.ring.total;
    let dropped = 0;
    if (from) {
      let want = "oldest" in from ? 0 : from.offset;
      if (want > this.ring.total) throw new ConnectError(`offset ${want} is beyond the end of the output (${this.ring.total})`, Code.OutOfRange);
      const oldest = this.ring.oldestOffset();
      if (want < oldest) {
        dropped = oldest - want;
        want = oldest;
      }
      offset = want;
      for (const chunk of this.ring.from(want)) sub.push({ kind: "data", chunk });
    }
    if (this.finalEvent) sub.push(this.finalEvent);
    else this.subs.add(sub);
    return { sub, offset, dropped };
  }

  /** Signals the running process (or its group or tree). Throws when nothing runs. */
  signal(sig: number, target: "process" | "group" | "tree", opts: { stopRestarts?: boolean } = {}): void {
    if (opts.stopRestarts) this.cancelRestarts();
    const run = this.run;
    if (!run) {
      if (opts.stopRestarts) return;
      throw new ConnectError(`process ${this.id} is not running`, Code.FailedPrecondition);
    }
    if (sig === SIGKILL || sig === SIGTERM) {
      run.killReason ??= "signal";
      if (run.raw) run.linger ??= setTimeout(() => run.child.abandonOutput(), KILL_LINGER_MS);
    }
    const pid = run.record.pid;
    if (target === "process") {
      try {
        process.kill(pid, sig);
      } catch (err) {
        throw new ConnectError(`error sending signal: ${(err as Error).message}`, Code.Internal);
      }
    } else if (target === "group") {
      if (!signalGroup(pid, sig) && !run.raw) throw new ConnectError(`error sending signal: no process in group ${pid}`, Code.Internal);
    } else if (sig === SIGKILL) void killTree(rootOf(run));
    else signalTree(rootOf(run), sig);
  }

  /** Stops supervision: the current run is the last one. A pending restart is dropped. */
  cancelRestarts(): void {
    this.stopRestarts = true;
    if (this.restartTimer && !this.run) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      this.finalize(this.pid);
    }
  }

  /** Resolves when the current run's leader was reaped, or after `ms`. */
  waitLeaderExit(ms: number): Promise<void> {
    const run = this.run;
    if (!run || run.raw) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timerDelay(ms));
      run.exitWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Resolves when the process is final, or after `ms`. */
  waitFinished(ms: number): Promise<void> {
    if (this.isFinished) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timerDelay(ms));
      this.finishWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Daemon shutdown, step 1: no more restarts, SIGTERM to the tree. */
  beginShutdown(): void {
    this.stopRestarts = true;
    this.shuttingDown = true;
    const run = this.run;
    if (run) {
      run.killReason = "shutdown";
      signalTree(rootOf(run), SIGTERM);
      if (run.raw) run.linger ??= setTimeout(() => run.child.abandonOutput(), KILL_LINGER_MS);
    } else this.cancelRestarts();
  }

  /** Daemon shutdown, step 2: SIGKILL whatever is left and stop waiting for output. */
  async forceShutdown(): Promise<void> {
    const run = this.run;
    if (!run) return;
    await killTree(rootOf(run));
    run.child.abandonOutput();
  }

  /** Whether the leader is stopped (SIGSTOP, SIGTSTP), read from /proc. */
  isSuspended(): boolean {
    if (!this.run || this.run.raw) return false;
    const st = readStat(this.run.record.pid)?.state;
    return st === "T" || st === "t";
  }
}
