import { getSystemErrorMap } from "node:util";
import type { ExitRusage, ResourceUsage } from "../limits/usage.js";
import { goSignalText } from "./signals.js";

/** How the kernel said a process ended: an exit code or a terminating signal. */
export interface RawExit {
  code: number | null;
  signal: number | null;
  /** What it used, when the daemon's reaper collected it (pipe commands). */
  rusage?: ExitRusage;
}

/** Why a run ended, as the extension reports it (mirrors envdts.v1.ExitOutcome). */
export type Outcome = "exited" | "signaled" | "timed_out" | "failed_to_start" | "oom_killed" | "cpu_limit";

/** The end of one run, in every form the RPCs need. */
export interface ExitInfo {
  outcome: Outcome;
  /** The exit status, or -1 when a signal ended the process (Go's ExitCode()). */
  exitCode: number;
  /** The terminating signal, 0 if none. */
  signal: number;
  /** The process exited on its own (Go's Exited()); false when a signal ended it. */
  exited: boolean;
  /** Go's ProcessState.String(): "exit status 1", "signal: killed". */
  status: string;
  /** Human-readable reason; undefined for a clean exit 0. */
  error: string | undefined;
  /** What the run used, when it could be measured. */
  usage?: ResourceUsage;
}

/** Why the daemon (or the kernel, for limits) ended a run, beyond what the wait status says. */
export interface EndCause {
  timedOutAfterMs?: number;
  execError?: string;
  /** The OOM killer struck inside the run's memory cgroup (limit in bytes). */
  oomKilled?: { limitBytes: number };
  /** The tree passed its CPU time limit (the daemon killed it, or RLIMIT_CPU did). */
  cpuLimit?: { limitMs: number; usedMs?: number };
}

/** Go's ProcessState.String() for an exit (core dumps are not reported by Node). */
export function goStatusString(raw: RawExit): string {
  if (raw.signal !== null) return `signal: ${goSignalText(raw.signal)}`;
  return `exit status ${raw.code ?? 0}`;
}

/** The text libuv gives an errno ("no such file or directory"). */
export function errnoText(errno: number): string {
  const entry = getSystemErrorMap().get(-Math.abs(errno));
  return entry ? entry[1] : `errno ${errno}`;
}

/** Builds the ExitInfo of a run from the kernel's status and what the daemon knows about it. */
export function exitInfo(raw: RawExit, why: EndCause): ExitInfo {
  const status = goStatusString(raw);
  const signaled = raw.signal !== null;
  const exitCode = signaled ? -1 : (raw.code ?? 0);
  const base = { exitCode, signal: raw.signal ?? 0, exited: !signaled, status };
  if (why.execError !== undefined && !signaled) return { ...base, outcome: "failed_to_start", error: why.execError };
  // A limit only explains an end that was not clean (a shell reports its killed child as 137).
  const unclean = signaled || exitCode !== 0;
  if (why.oomKilled && unclean) return { ...base, outcome: "oom_killed", error: `killed by the OOM killer: memory limit of ${why.oomKilled.limitBytes} bytes reached (${status})` };
  if (why.cpuLimit && unclean) {
    const used = why.cpuLimit.usedMs !== undefined ? `, used ${why.cpuLimit.usedMs} ms` : "";
    return { ...base, outcome: "cpu_limit", error: `CPU time limit of ${why.cpuLimit.limitMs} ms exceeded${used} (${status})` };
  }
  if (why.timedOutAfterMs !== undefined && signaled) return { ...base, outcome: "timed_out", error: `timed out after ${why.timedOutAfterMs} ms (${status})` };
  if (signaled) return { ...base, outcome: "signaled", error: status };
  return { ...base, outcome: "exited", error: exitCode === 0 ? undefined : status };
}

/** The end of a run that never got a process (the launcher could not even be set up). */
export function failedToStart(message: string): ExitInfo {
  return { outcome: "failed_to_start", exitCode: -1, signal: 0, exited: false, status: "", error: message };
}
