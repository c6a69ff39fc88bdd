import { readFileSync } from "node:fs";

/** What a process tree used (envdts.v1.ProcessUsage). */
export interface ResourceUsage {
  cpuUserUs: number;
  cpuSystemUs: number;
  memoryCurrentBytes: number;
  memoryPeakBytes: number;
  ioReadBytes: number;
  ioWriteBytes: number;
  tasksCurrent: number;
  tasksPeak: number;
  oomKills: number;
  source: "cgroup_v2" | "cgroup_v1" | "proc" | "";
}

/** Nothing measured yet. */
export function emptyUsage(): ResourceUsage {
  return { cpuUserUs: 0, cpuSystemUs: 0, memoryCurrentBytes: 0, memoryPeakBytes: 0, ioReadBytes: 0, ioWriteBytes: 0, tasksCurrent: 0, tasksPeak: 0, oomKills: 0, source: "" };
}

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux Node supports. */
const CLK_TCK = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return undefined;
  }
}

/** "Key: value" or "key value" lines into numbers (first number on the line). */
export function parseKeyed(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? "").split("\n")) {
    const m = /^([\w.]+):?\s+(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * One sample of a process from /proc: its CPU time plus that of the children
 * it waited for, its resident memory (and high-water mark), threads and
 * storage I/O. Undefined once the process is gone.
 */
export function procUsage(pid: number): ResourceUsage | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields from state (3rd in the file): utime is 14th, so index 11 here.
  const ticksToUs = (i: number) => Math.round((Number(f[i]) || 0) * (1_000_000 / CLK_TCK));
  const status = parseKeyed(read(`/proc/${pid}/status`));
  const io = parseKeyed(read(`/proc/${pid}/io`));
  const threads = Number(f[17]) || 0;
  return {
    cpuUserUs: ticksToUs(11) + ticksToUs(13),
    cpuSystemUs: ticksToUs(12) + ticksToUs(14),
    memoryCurrentBytes: (status.get("VmRSS") ?? 0) * 1024,
    memoryPeakBytes: (status.get("VmHWM") ?? 0) * 1024,
    ioReadBytes: io.get("read_bytes") ?? 0,
    ioWriteBytes: io.get("write_bytes") ?? 0,
    tasksCurrent: threads,
    tasksPeak: threads,
    oomKills: 0,
    source: "proc",
  };
}

/** Combines a new sample with what was seen before: counters and peaks never go down. */
export function foldUsage(prev: ResourceUsage | undefined, next: ResourceUsage): ResourceUsage {
  if (!prev) return next;
  return {
    ...next,
    cpuUserUs: Math.max(prev.cpuUserUs, next.cpuUserUs),
    cpuSystemUs: Math.max(prev.cpuSystemUs, next.cpuSystemUs),
    memoryPeakBytes: Math.max(prev.memoryPeakBytes, next.memoryPeakBytes, next.memoryCurrentBytes),
    ioReadBytes: Math.max(prev.ioReadBytes, next.ioReadBytes),
    ioWriteBytes: Math.max(prev.ioWriteBytes, next.ioWriteBytes),
    tasksPeak: Math.max(prev.tasksPeak, next.tasksPeak, next.tasksCurrent),
    oomKills: Math.max(prev.oomKills, next.oomKills),
  };
}

/**
 * What wait4() reported for a process and the children it waited for, when the daemon reaped it.
 * Not its peak RSS: ru_maxrss of a child started with vfork semantics includes the daemon's own
 * memory, on which it ran until its exec.
 */
export interface ExitRusage {
  userUs: number;
  systemUs: number;
  /** Storage I/O (ru_inblock and ru_oublock, 512-byte blocks, as /proc/<pid>/io read_bytes and write_bytes). */
  readBytes: number;
  writeBytes: number;
}

/**
 * Adds the kernel's final account of the leader to what was sampled: exact CPU time and storage
 * I/O however short the command was (a sample can only see the process while it lives).
 */
export function foldExitRusage(prev: ResourceUsage | undefined, ru: ExitRusage): ResourceUsage {
  const base = prev ?? { ...emptyUsage(), source: "proc" as const };
  return {
    ...base,
    cpuUserUs: Math.max(base.cpuUserUs, ru.userUs),
    cpuSystemUs: Math.max(base.cpuSystemUs, ru.systemUs),
    ioReadBytes: Math.max(base.ioReadBytes, ru.readBytes),
    ioWriteBytes: Math.max(base.ioWriteBytes, ru.writeBytes),
    tasksPeak: Math.max(base.tasksPeak, 1),
  };
}
