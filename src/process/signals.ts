import { constants } from "node:os";

const BY_NAME: Record<string, number> = constants.signals as unknown as Record<string, number>;
const BY_NUMBER = new Map<number, string>();
for (const [name, num] of Object.entries(BY_NAME)) if (!BY_NUMBER.has(num) && name !== "SIGIOT" && name !== "SIGPOLL") BY_NUMBER.set(num, name);

/** Go's syscall.Signal.String() texts on Linux, which E2B's status strings are made of. */
const GO_SIGNAL_TEXT: Record<number, string> = {
  1: "hangup",
  2: "interrupt",
  3: "quit",
  4: "illegal instruction",
  5: "trace/breakpoint trap",
  6: "aborted",
  7: "bus error",
  8: "floating point exception",
  9: "killed",
  10: "user defined signal 1",
  11: "segmentation fault",
  12: "user defined signal 2",
  13: "broken pipe",
  14: "alarm clock",
  15: "terminated",
  16: "stack fault",
  17: "child exited",
  18: "continued",
  19: "stopped (signal)",
  20: "stopped",
  21: "stopped (tty input)",
  22: "stopped (tty output)",
  23: "urgent I/O condition",
  24: "CPU time limit exceeded",
  25: "file size limit exceeded",
  26: "virtual timer expired",
  27: "profiling timer expired",
  28: "window changed",
  29: "I/O possible",
  30: "power failure",
  31: "bad system call",
};

/** Signal numbers used by the process code. */
export const SIGKILL = 9;
export const SIGTERM = 15;

/** "SIGINT", "INT", "int", "sigusr1" → the number; undefined if unknown. */
export function signalFromName(name: string): number | undefined {
  const upper = name.trim().toUpperCase();
  if (/^\d+$/.test(upper)) return signalFromNumber(Number(upper));
  const full = upper.startsWith("SIG") ? upper : "SIG" + upper;
  return BY_NAME[full];
}

/** The number itself when it is a valid signal (1..64), else undefined. */
export function signalFromNumber(n: number): number | undefined {
  return Number.isInteger(n) && n >= 1 && n <= 64 ? n : undefined;
}

/** "SIGKILL" for 9; "SIG<n>" for real-time or unnamed signals. */
export function signalName(n: number): string {
  return BY_NUMBER.get(n) ?? `SIG${n}`;
}

/** Go's text for a signal ("killed", "terminated", or "signal 40"). */
export function goSignalText(n: number): string {
  return GO_SIGNAL_TEXT[n] ?? `signal ${n}`;
}
