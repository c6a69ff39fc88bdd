import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ExitOutcome,
  ProcessState,
  RestartPolicy_Mode,
  type ProcessExecutionSchema,
  type ProcessExit,
  type ProcessExitSchema,
  type ProcessUsageSchema,
  type ProcessInfo,
  type ProcessInfoSchema,
} from "../../gen/envdts/v1/process_ext_pb.js";
import { capabilityNames } from "../../isolation/capabilities.js";
import type { ResourceUsage } from "../../limits/usage.js";
import type { ExitInfo, Outcome } from "../exit-status.js";
import type { ManagedProcess } from "../managed-process.js";
import type { ProcessStateName, RestartSpec } from "../process-spec.js";
import { signalName } from "../signals.js";

const OUTCOMES: Record<Outcome, ExitOutcome> = {
  exited: ExitOutcome.EXITED,
  signaled: ExitOutcome.SIGNALED,
  timed_out: ExitOutcome.TIMED_OUT,
  failed_to_start: ExitOutcome.FAILED_TO_START,
  oom_killed: ExitOutcome.OOM_KILLED,
  cpu_limit: ExitOutcome.CPU_LIMIT,
};

const STATES: Record<ProcessStateName, ProcessState> = {
  starting: ProcessState.STARTING,
  running: ProcessState.RUNNING,
  stopped: ProcessState.STOPPED,
  error: ProcessState.ERROR,
};

const MODES: Record<RestartSpec["mode"], RestartPolicy_Mode> = {
  never: RestartPolicy_Mode.NEVER,
  on_failure: RestartPolicy_Mode.ON_FAILURE,
  always: RestartPolicy_Mode.ALWAYS,
};

/** envdts.v1.ProcessUsage. */
export function extUsage(u: ResourceUsage | undefined): MessageInitShape<typeof ProcessUsageSchema> | undefined {
  if (!u) return undefined;
  return {
    cpuUserUs: BigInt(u.cpuUserUs),
    cpuSystemUs: BigInt(u.cpuSystemUs),
    memoryCurrentBytes: BigInt(u.memoryCurrentBytes),
    memoryPeakBytes: BigInt(u.memoryPeakBytes),
    ioReadBytes: BigInt(u.ioReadBytes),
    ioWriteBytes: BigInt(u.ioWriteBytes),
    tasksCurrent: u.tasksCurrent,
    tasksPeak: u.tasksPeak,
    oomKills: u.oomKills,
    source: u.source,
  };
}

/** envdts.v1.ProcessExecution: how limits, identity and isolation were applied. */
export function extExecution(p: ManagedProcess): MessageInitShape<typeof ProcessExecutionSchema> {
  const { execution: e, identity } = p.spec;
  const l = e.limits;
  const big = (v: number | undefined) => (v === undefined ? undefined : BigInt(v));
  const caps = e.security.caps;
  return {
    limits: { memoryMaxBytes: big(l.memoryMaxBytes), cpuTimeMs: big(l.cpuTimeMs), cpuCores: l.cpuCores, pidsMax: l.pidsMax, nofile: big(l.nofile) },
    enforcement: e.enforcement,
    uid: identity.uid,
    gid: identity.gid,
    groups: identity.groups,
    noNewPrivs: e.security.noNewPrivs,
    capabilities: caps ? capabilityNames((identity.uid === 0 || e.security.userNamespace ? caps.keep : 0n) | caps.add) : [],
    capabilitiesUnchanged: !caps,
    seccompProfile: e.security.seccomp?.profile ?? "none",
    seccompSyscalls: e.security.seccomp?.numbers.length ?? 0,
    maskedPaths: e.security.maskedPaths,
    readonlyPaths: e.security.readonlyPaths,
    cgroups: p.cgroupPaths,
    userNamespace: e.security.userNamespace,
  };
}

/** envdts.v1.ProcessExit of a run's end. */
export function extExit(exit: ExitInfo): MessageInitShape<typeof ProcessExitSchema> {
  return {
    outcome: OUTCOMES[exit.outcome],
    exitCode: exit.exitCode,
    signal: exit.signal,
    signalName: exit.signal ? signalName(exit.signal) : "",
    status: exit.status,
    error: exit.error,
    usage: extUsage(exit.usage),
  };
}

/** envdts.v1.ProcessInfo of a process, running or finished. */
export function extInfo(p: ManagedProcess): MessageInitShape<typeof ProcessInfoSchema> {
  const spec = p.spec;
  const end = p.finishedAt ?? Date.now();
  return {
    id: BigInt(p.id),
    pid: p.pid,
    tag: spec.tag,
    config: spec.config as ProcessInfo["config"],
    state: STATES[p.state],
    pty: p.ptySize ? { size: { cols: p.ptySize.cols, rows: p.ptySize.rows } } : undefined,
    user: spec.user.name,
    cwd: spec.cwd,
    startedAt: timestampFromMs(p.startedAt),
    finishedAt: p.finishedAt !== undefined ? timestampFromMs(p.finishedAt) : undefined,
    durationMs: BigInt(Math.max(0, end - p.startedAt)),
    restartCount: p.restartCount,
    exit: p.lastExit ? (extExit(p.lastExit) as ProcessExit) : undefined,
    runs: p.runs.map((r) => ({
      pid: r.pid,
      startedAt: timestampFromMs(r.startedAt),
      finishedAt: r.finishedAt !== undefined ? timestampFromMs(r.finishedAt) : undefined,
      exit: r.exit ? (extExit(r.exit) as ProcessExit) : undefined,
    })),
    output: {
      totalBytes: BigInt(p.ring.total),
      oldestOffset: BigInt(p.ring.oldestOffset()),
      stdoutBytes: BigInt(p.ring.streamTotals.stdout),
      stderrBytes: BigInt(p.ring.streamTotals.stderr),
      ptyBytes: BigInt(p.ring.streamTotals.pty),
    },
    restart: { mode: MODES[spec.restart.mode], backoffMs: spec.restart.backoffMs, maxBackoffMs: spec.restart.maxBackoffMs, maxRestarts: spec.restart.maxRestarts },
    timeoutMs: spec.timeoutMs,
    suspended: p.isSuspended(),
    usage: extUsage(p.usage()),
    execution: extExecution(p),
  };
}
