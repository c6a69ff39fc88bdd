import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ExitOutcome,
  OutputStream,
  ProcessState,
  RestartPolicy_Mode,
  type ProcessExecution,
  type ProcessExit as ProcessExitMessage,
  type ProcessInfo as ProcessInfoMessage,
  type ProcessStreamEvent,
  type ProcessUsage as ProcessUsageMessage,
} from "../gen/envdts/v1/process_ext_pb.js";

/** How a run ended. */
export type ExitOutcomeName = "exited" | "signaled" | "timed_out" | "failed_to_start" | "oom_killed" | "cpu_limit" | "unspecified";
/** Where a process is in its life. */
export type ProcessStateName = "starting" | "running" | "stopped" | "error" | "unspecified";
/** When the daemon restarts a process. */
export type RestartMode = "never" | "on-failure" | "always";
/** Which output stream bytes came from. */
export type StreamName = "stdout" | "stderr" | "pty";

/** Resources a run used (its whole tree when it had a cgroup). */
export interface ProcessUsage {
  cpuUserUs: number;
  cpuSystemUs: number;
  memoryCurrentBytes: number;
  memoryPeakBytes: number;
  ioReadBytes: number;
  ioWriteBytes: number;
  tasksCurrent: number;
  tasksPeak: number;
  oomKills: number;
  /** "cgroup_v2", "cgroup_v1", "proc", or "" when nothing could be read. */
  source: string;
}

/** How one run of a process ended. */
export interface ProcessExit {
  outcome: ExitOutcomeName;
  /** The exit status; -1 when a signal ended the run. */
  exitCode: number;
  /** The terminating signal's number, 0 if none. */
  signal: number;
  /** E.g. "SIGKILL"; "" if none. */
  signalName: string;
  /** Go's ProcessState.String(), e.g. "exit status 1" or "signal: killed". */
  status: string;
  /** Why, when the outcome is not a clean exit 0. */
  error?: string;
  usage: ProcessUsage;
}

/** One run (the first start or a restart). */
export interface ProcessRun {
  pid: number;
  startedAt?: Date;
  finishedAt?: Date;
  exit?: ProcessExit;
}

/** A running or finished process as the daemon describes it. */
export interface ProcessInfo {
  /** The daemon-assigned id: stable across restarts, unlike the pid. */
  id: number;
  pid: number;
  tag?: string;
  cmd: string;
  args: string[];
  state: ProcessStateName;
  user: string;
  cwd: string;
  startedAt?: Date;
  finishedAt?: Date;
  durationMs: number;
  restartCount: number;
  restart: RestartMode;
  /** How the last run ended, once any has. */
  exit?: ProcessExit;
  runs: ProcessRun[];
  /** What the current run uses, or what the last one used. */
  usage: ProcessUsage;
  output: { totalBytes: number; oldestOffset: number; stdoutBytes: number; stderrBytes: number; ptyBytes: number };
  suspended: boolean;
  timeoutMs: number;
  /** How limits, identity and isolation were applied (the generated message). */
  execution?: ProcessExecution;
  /** The message as received, for fields this view leaves out. */
  raw: ProcessInfoMessage;
}

/** One event of a Start or Attach stream (keepalives are left out). */
export type ProcessEvent =
  | { type: "attached"; process: ProcessInfo; offset: number; droppedBytes: number }
  | { type: "started"; id: number; pid: number; restartCount: number }
  | { type: "output"; stream: StreamName; data: Uint8Array; offset: number; streamOffset: number }
  | { type: "exited"; pid: number; exit: ProcessExit; final: boolean; restartDelayMs: number };

/** The generated enums carry names without their prefix ("OOM_KILLED"). */
function enumName(name: string | undefined): string {
  return (name ?? "UNSPECIFIED").toLowerCase();
}

function date(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}

export function toUsage(u: ProcessUsageMessage | undefined): ProcessUsage {
  return {
    cpuUserUs: Number(u?.cpuUserUs ?? 0),
    cpuSystemUs: Number(u?.cpuSystemUs ?? 0),
    memoryCurrentBytes: Number(u?.memoryCurrentBytes ?? 0),
    memoryPeakBytes: Number(u?.memoryPeakBytes ?? 0),
    ioReadBytes: Number(u?.ioReadBytes ?? 0),
    ioWriteBytes: Number(u?.ioWriteBytes ?? 0),
    tasksCurrent: u?.tasksCurrent ?? 0,
    tasksPeak: u?.tasksPeak ?? 0,
    oomKills: u?.oomKills ?? 0,
    source: u?.source ?? "",
  };
}

export function toExit(e: ProcessExitMessage): ProcessExit {
  const exit: ProcessExit = {
    outcome: enumName(ExitOutcome[e.outcome]) as ExitOutcomeName,
    exitCode: e.exitCode,
    signal: e.signal,
    signalName: e.signalName,
    status: e.status,
    usage: toUsage(e.usage),
  };
  if (e.error !== undefined) exit.error = e.error;
  return exit;
}

const RESTART_NAMES: Record<RestartPolicy_Mode, RestartMode> = {
  [RestartPolicy_Mode.UNSPECIFIED]: "never",
  [RestartPolicy_Mode.NEVER]: "never",
  [RestartPolicy_Mode.ON_FAILURE]: "on-failure",
  [RestartPolicy_Mode.ALWAYS]: "always",
};

/** "on-failure" → the wire enum. */
export function restartMode(mode: RestartMode): RestartPolicy_Mode {
  switch (mode) {
    case "never":
      return RestartPolicy_Mode.NEVER;
    case "on-failure":
      return RestartPolicy_Mode.ON_FAILURE;
    case "always":
      return RestartPolicy_Mode.ALWAYS;
    default:
      throw new RangeError(`restart mode '${mode as string}' is not never, on-failure or always`);
  }
}

export function toInfo(p: ProcessInfoMessage): ProcessInfo {
  const info: ProcessInfo = {
    id: Number(p.id),
    pid: p.pid,
    cmd: p.config?.cmd ?? "",
    args: p.config?.args ?? [],
    state: enumName(ProcessState[p.state]) as ProcessStateName,
    user: p.user,
    cwd: p.cwd,
    startedAt: date(p.startedAt),
    finishedAt: date(p.finishedAt),
    durationMs: Number(p.durationMs),
    restartCount: p.restartCount,
    restart: RESTART_NAMES[p.restart?.mode ?? RestartPolicy_Mode.UNSPECIFIED] ?? "never",
    runs: p.runs.map((r) => ({ pid: r.pid, startedAt: date(r.startedAt), finishedAt: date(r.finishedAt), exit: r.exit ? toExit(r.exit) : undefined })),
    usage: toUsage(p.usage),
    output: {
      totalBytes: Number(p.output?.totalBytes ?? 0),
      oldestOffset: Number(p.output?.oldestOffset ?? 0),
      stdoutBytes: Number(p.output?.stdoutBytes ?? 0),
      stderrBytes: Number(p.output?.stderrBytes ?? 0),
      ptyBytes: Number(p.output?.ptyBytes ?? 0),
    },
    suspended: p.suspended,
    timeoutMs: p.timeoutMs,
    execution: p.execution,
    raw: p,
  };
  if (p.tag !== undefined) info.tag = p.tag;
  if (p.exit) info.exit = toExit(p.exit);
  return info;
}

const STREAM_NAMES: Record<OutputStream, StreamName> = {
  [OutputStream.UNSPECIFIED]: "stdout",
  [OutputStream.STDOUT]: "stdout",
  [OutputStream.STDERR]: "stderr",
  [OutputStream.PTY]: "pty",
};

/** A wire event as a ProcessEvent; undefined for keepalives and unknown events. */
export function toEvent(ev: ProcessStreamEvent): ProcessEvent | undefined {
  const e = ev.event;
  switch (e.case) {
    case "attached":
      return { type: "attached", process: toInfo(e.value.process!), offset: Number(e.value.offset), droppedBytes: Number(e.value.droppedBytes) };
    case "started":
      return { type: "started", id: Number(e.value.id), pid: e.value.pid, restartCount: e.value.restartCount };
    case "output":
      return { type: "output", stream: STREAM_NAMES[e.value.stream] ?? "stdout", data: e.value.data, offset: Number(e.value.offset), streamOffset: Number(e.value.streamOffset) };
    case "exited":
      return { type: "exited", pid: e.value.pid, exit: toExit(e.value.exit!), final: e.value.final, restartDelayMs: e.value.restartDelayMs };
    default:
      return undefined;
  }
}
