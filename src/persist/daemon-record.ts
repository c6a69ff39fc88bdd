import { readFileSync } from "node:fs";
import { UntrustedStateError, type StateDir } from "./state-dir.js";

/** Which daemon last used the state directory. */
const RECORD = "daemon.json";

interface DaemonRecord {
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  startTicks: string;
  bootId: string;
}

function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "";
  }
}

/** A process's start time in ticks since boot, or undefined when it does not exist. */
function startTicks(pid: number | "self"): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

/**
 * Makes sure no other live daemon uses this state directory, then claims it. Two daemons on one
 * run directory would hand each other's /init state (the token too) across restarts, and one's
 * clean-up would remove the other's temporaries in flight: the second one refuses to start.
 * Not a lock (two daemons starting in the same instant can both pass), a guard against the
 * mistake of starting a second daemon with the same --run-dir.
 */
export function claimStateDir(dir: StateDir): void {
  let previous: DaemonRecord | undefined;
  try {
    const raw = dir.read(RECORD);
    if (raw) previous = JSON.parse(raw.toString("utf8")) as DaemonRecord;
  } catch {
    /* unreadable: it names no live daemon we could check */
  }
  if (
    previous &&
    Number.isInteger(previous.pid) &&
    previous.pid !== process.pid &&
    previous.bootId === bootId() &&
    previous.startTicks !== undefined &&
    startTicks(previous.pid) === previous.startTicks
  ) {
    throw new UntrustedStateError(`another daemon (pid ${previous.pid}) uses ${dir.path}: give each daemon its own --run-dir`);
  }
  const mine: DaemonRecord = { pid: process.pid, startTicks: startTicks("self") ?? "", bootId: bootId() };
  dir.writeSync(RECORD, JSON.stringify(mine));
}
