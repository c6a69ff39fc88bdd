import { readFileSync, readdirSync, statfsSync } from "node:fs";
import { cpus, loadavg } from "node:os";

/** Memory figures computed as gopsutil's VirtualMemory does on Linux. */
export interface MemoryFigures {
  total: number;
  used: number;
  cached: number;
  available: number;
}

/** Reads /proc/meminfo. */
export function readMemory(): MemoryFigures {
  const fields = new Map<string, number>();
  for (const line of readFileSync("/proc/meminfo", "utf8").split("\n")) {
    const m = /^(\w+\(?\w*\)?):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) fields.set(m[1]!, Number(m[2]) * 1024);
  }
  const get = (k: string) => fields.get(k) ?? 0;
  const total = get("MemTotal");
  const cached = get("Cached") + get("SReclaimable");
  const used = total - get("MemFree") - get("Buffers") - cached;
  return { total, used: Math.max(0, used), cached, available: get("MemAvailable") };
}

/** Byte counts of one filesystem, as statfs reports them. */
export interface DiskFigures {
  total: number;
  used: number;
  free: number;
  type: number;
}

/** statfs(path): total = blocks × bsize, used = total − available (E2B's formula). */
export function readDisk(path = "/"): DiskFigures {
  const s = statfsSync(path);
  const total = s.blocks * s.bsize;
  return { total, used: total - s.bavail * s.bsize, free: s.bavail * s.bsize, type: s.type };
}

interface CpuTimes {
  busy: number;
  total: number;
}

function readCpuTimes(): CpuTimes {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest fields are inside user/nice)
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Busy CPU share since the previous call, like gopsutil's cpu.Percent(0, false). The first
 * call measures from construction, or from boot when `fromBoot` is set.
 */
export class CpuPercent {
  private last: CpuTimes;

  constructor(fromBoot = false) {
    this.last = fromBoot ? { busy: 0, total: 0 } : readCpuTimes();
  }

  sample(): number {
    const now = readCpuTimes();
    const dTotal = now.total - this.last.total;
    const dBusy = now.busy - this.last.busy;
    this.last = now;
    if (dTotal <= 0) return 0;
    return Math.min(100, Math.max(0, (dBusy / dTotal) * 100));
  }
}

/** Cumulative traffic of one network interface. */
export interface NetCounters {
  iface: string;
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

/** Reads /proc/net/dev; empty when it cannot be read. */
export function readNetwork(): NetCounters[] {
  const out: NetCounters[] = [];
  let text = "";
  try {
    text = readFileSync("/proc/net/dev", "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n").slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!.trim().split(/\s+/).map(Number);
    out.push({ iface: m[1]!, rxBytes: v[0] ?? 0, rxPackets: v[1] ?? 0, txBytes: v[8] ?? 0, txPackets: v[9] ?? 0 });
  }
  return out;
}

/** Logical CPUs, at least 1. */
export function cpuCount(): number {
  return cpus().length || 1;
}

/** 1, 5 and 15 minute load averages. */
export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = loadavg();
  return [a, b, c];
}

/** File descriptors the daemon holds open. */
export function openFdCount(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return 0;
  }
}

/** Which cgroup hierarchy is mounted. */
export type CgroupMode = "none" | "v1" | "v2" | "hybrid";

/** Which cgroup hierarchy the kernel offers under `root`. */
export function detectCgroupMode(root = "/sys/fs/cgroup"): CgroupMode {
  let mounts = "";
  try {
    mounts = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return "none";
  }
  let v1 = false;
  let v2 = false;
  for (const line of mounts.split("\n")) {
    const [, mnt, type] = line.split(" ");
    if (!mnt || !mnt.startsWith(root)) continue;
    if (type === "cgroup2") {
      v2 = true;
    } else if (type === "cgroup") v1 = true;
  }
  if (v1 && v2) return "hybrid";
  if (v2) return "v2";
  if (v1) return "v1";
  return "none";
}
