import { readdirSync, readFileSync, readlinkSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { reaperRunning } from "./child-reaper.js";
import { openFdCount, readMemory } from "./host-metrics.js";

/** One component's verdict. `value` and `threshold` are the figure that decided it and its bound. */
export interface ComponentVerdict {
  name: string;
  status: "serving" | "not_serving" | "unknown";
  reason: string;
  value: number;
  threshold: number;
  /** Whether NOT_SERVING here makes the whole daemon NOT_SERVING. */
  critical: boolean;
}

/** What the health check is told about the process side (absent when processes are off). */
export interface SupervisionView {
  closing(): boolean;
  liveCount(): number;
  cgroupVersion: "v1" | "v2" | "none";
  cgroupDescription(): string;
  cgroupWarnings(): string[];
}

/** Used share of a filesystem above which uploads are expected to fail. */
export const DISK_USED_MAX = 0.99;
/** Free bytes below which a filesystem counts as full whatever its size. */
export const DISK_FREE_MIN_BYTES = 64 * 1024 * 1024;
/** Free inodes below which a filesystem counts as full. */
export const DISK_FREE_INODES_MIN = 1024;
/** Share of the descriptor limit (and of the system's file table) in use that leaves too little headroom. */
export const FD_USED_MAX = 0.9;
/** Share of the inotify instance or watch limit in use that leaves too little headroom. */
export const INOTIFY_USED_MAX = 0.9;
/** Memory "full" stall over 10 s, percent: every task waits on memory this share of the time (thrashing). */
export const MEMORY_FULL_STALL_MAX = 20;
/** CPU "some" stall over 10 s, percent: some task waits for a CPU this share of the time. */
export const CPU_SOME_STALL_MAX = 90;

const MiB = 1024 * 1024;
const fmtMiB = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
const pct = (share: number) => `${(share * 100).toFixed(1)}%`;

/** One line of /proc/pressure/<resource>: avg10, avg60, avg300 (percent) and total (µs). */
export interface PressureLine {
  avg10: number;
  avg60: number;
  avg300: number;
  total: number;
}

/** /proc/pressure/<resource> (PSI), or undefined with why when the kernel has none. */
export function readPressure(resource: "cpu" | "memory" | "io"): { some: PressureLine; full?: PressureLine } | { error: string } {
  let text: string;
  try {
    text = readFileSync(`/proc/pressure/${resource}`, "utf8");
  } catch (err) {
    return { error: `/proc/pressure/${resource}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  const lines: Record<string, PressureLine> = {};
  for (const line of text.split("\n")) {
    const m = /^(some|full) avg10=([\d.]+) avg60=([\d.]+) avg300=([\d.]+) total=(\d+)/.exec(line);
    if (m) lines[m[1]!] = { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]), total: Number(m[5]) };
  }
  if (!lines.some) return { error: `/proc/pressure/${resource}: unreadable` };
  return { some: lines.some, full: lines.full };
}

/** The soft RLIMIT_NOFILE of the daemon, from /proc/self/limits (Infinity when unlimited). */
export function descriptorLimit(): number {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (m) return m[1] === "unlimited" ? Infinity : Number(m[1]);
  } catch {
    /* fall through */
  }
  return NaN;
}

/** The system's file table: allocated handles and its maximum (/proc/sys/fs/file-nr). */
function systemFiles(): { allocated: number; max: number } | undefined {
  try {
    const [allocated, , max] = readFileSync("/proc/sys/fs/file-nr", "utf8").trim().split(/\s+/).map(Number);
    if (allocated !== undefined && max !== undefined && max > 0) return { allocated, max };
  } catch {
    /* not Linux /proc */
  }
  return undefined;
}

function readNumber(path: string): number {
  try {
    return Number(readFileSync(path, "utf8").trim());
  } catch {
    return NaN;
  }
}

/** The daemon's own inotify instances and the watches they hold (from /proc/self/fd and fdinfo). */
export function inotifyUsage(): { instances: number; watches: number } {
  let instances = 0;
  let watches = 0;
  let fds: string[] = [];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return { instances, watches };
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== "anon_inode:inotify") continue;
    instances++;
    try {
      for (const line of readFileSync(`/proc/self/fdinfo/${fd}`, "utf8").split("\n")) if (line.startsWith("inotify wd:")) watches++;
    } catch {
      /* closed meanwhile */
    }
  }
  return { instances, watches };
}

/** The filesystems uploads land on that matter most: the root and the temporary directory. */
function diskPaths(): string[] {
  return [...new Set(["/", tmpdir()])];
}

function supervision(view: SupervisionView | undefined, shuttingDown: boolean): ComponentVerdict {
  const base = { name: "process_supervision", value: 0, threshold: 0, critical: true };
  if (shuttingDown || view?.closing()) return { ...base, status: "not_serving", reason: "the daemon is shutting down: no new commands" };
  if (!view) return { ...base, status: "not_serving", reason: "process supervision is not running" };
  const reaper = reaperRunning() ? "orphans are reaped" : "no child reaper: orphans of commands go to init";
  return { ...base, status: "serving", reason: `${view.liveCount()} processes running; ${reaper}`, value: view.liveCount() };
}

function cgroups(view: SupervisionView | undefined): ComponentVerdict {
  const base = { name: "cgroups", value: 0, threshold: 0, critical: false };
  if (!view) return { ...base, status: "unknown", reason: "process supervision is not running" };
  if (view.cgroupVersion === "none") return { ...base, status: "serving", reason: `${view.cgroupDescription()}; limits that need a cgroup are refused` };
  const warnings = view.cgroupWarnings();
  return { ...base, status: "serving", reason: [view.cgroupDescription(), ...warnings].join("; ") };
}

function disk(): ComponentVerdict {
  const base = { name: "disk", threshold: DISK_USED_MAX, critical: true };
  const problems: string[] = [];
  const notes: string[] = [];
  let worst = 0;
  for (const path of diskPaths()) {
    let s;
    try {
      s = statfsSync(path);
    } catch (err) {
      problems.push(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      continue;
    }
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    const used = total > 0 ? (total - free) / total : 0;
    worst = Math.max(worst, used);
    const inodes = s.files > 0 ? `, ${s.ffree} inodes free` : "";
    const line = `${path}: ${fmtMiB(free)} free of ${fmtMiB(total)}${inodes}`;
    if (total > 0 && (used >= DISK_USED_MAX || free < DISK_FREE_MIN_BYTES)) problems.push(`${line} (uploads there will fail)`);
    else if (s.files > 0 && s.ffree < DISK_FREE_INODES_MIN) problems.push(`${line} (out of inodes: new files there will fail)`);
    else notes.push(line);
  }
  if (problems.length) return { ...base, status: "not_serving", value: worst, reason: [...problems, ...notes].join("; ") };
  return { ...base, status: "serving", value: worst, reason: notes.join("; ") };
}

function descriptors(): ComponentVerdict {
  const base = { name: "descriptors", threshold: FD_USED_MAX, critical: true };
  const open = openFdCount();
  const limit = descriptorLimit();
  const share = Number.isFinite(limit) && limit > 0 ? open / limit : 0;
  const sys = systemFiles();
  const sysShare = sys ? sys.allocated / sys.max : 0;
  const ownText = Number.isFinite(limit) ? `${open} of ${limit} descriptors open (${pct(share)})` : `${open} descriptors open, no limit`;
  const sysText = sys ? `system file table ${sys.allocated} of ${sys.max}` : "system file table unknown";
  const value = Math.max(share, sysShare);
  if (share >= FD_USED_MAX) return { ...base, status: "not_serving", value, reason: `${ownText}: new connections, uploads and commands will fail; ${sysText}` };
  if (sysShare >= FD_USED_MAX) return { ...base, status: "not_serving", value, reason: `${sysText} (${pct(sysShare)}): the machine is running out of file handles; ${ownText}` };
  return { ...base, status: "serving", value, reason: `${ownText}; ${sysText}` };
}

function inotify(): ComponentVerdict {
  const base = { name: "inotify", threshold: INOTIFY_USED_MAX, critical: true };
  const { instances, watches } = inotifyUsage();
  const maxInstances = readNumber("/proc/sys/fs/inotify/max_user_instances");
  const maxWatches = readNumber("/proc/sys/fs/inotify/max_user_watches");
  if (!(maxInstances > 0) || !(maxWatches > 0)) return { ...base, status: "unknown", value: 0, reason: "no inotify limits in /proc/sys/fs/inotify" };
  const value = Math.max(instances / maxInstances, watches / maxWatches);
  const text = `the daemon holds ${instances} of ${maxInstances} instances and ${watches} of ${maxWatches} watches (per-user limits, shared with the user's other processes)`;
  if (value >= INOTIFY_USED_MAX) return { ...base, status: "not_serving", value, reason: `${text}: new directory watches will fail` };
  return { ...base, status: "serving", value, reason: text };
}

function memoryPressure(): ComponentVerdict {
  const base = { name: "memory_pressure", threshold: MEMORY_FULL_STALL_MAX, critical: true };
  const p = readPressure("memory");
  let avail = "";
  try {
    const m = readMemory();
    avail = `; ${fmtMiB(m.total - m.used)} of ${fmtMiB(m.total)} available`;
  } catch {
    /* no /proc/meminfo */
  }
  if ("error" in p) return { ...base, status: "unknown", value: 0, reason: `no pressure stall information (${p.error})${avail}` };
  const full = p.full?.avg10 ?? 0;
  const text = `all tasks stalled on memory ${full.toFixed(2)}% of the last 10 s, some ${p.some.avg10.toFixed(2)}%${avail}`;
  if (full >= MEMORY_FULL_STALL_MAX) return { ...base, status: "not_serving", value: full, reason: `${text}: the sandbox is thrashing` };
  return { ...base, status: "serving", value: full, reason: text };
}

function cpuPressure(): ComponentVerdict {
  // CPU-bound work is what sandboxes are for: the daemon still answers, so this one only warns.
  const base = { name: "cpu_pressure", threshold: CPU_SOME_STALL_MAX, critical: false };
  const p = readPressure("cpu");
  if ("error" in p) return { ...base, status: "unknown", value: 0, reason: `no pressure stall information (${p.error})` };
  const some = p.some.avg10;
  const text = `some task waited for a CPU ${some.toFixed(2)}% of the last 10 s (${p.some.avg60.toFixed(2)}% of 60 s)`;
  if (some >= CPU_SOME_STALL_MAX) return { ...base, status: "not_serving", value: some, reason: `${text}: answers will be slow` };
  return { ...base, status: "serving", value: some, reason: text };
}

/** Every component, in a fixed order, and the overall verdict. */
export function checkHealth(view: SupervisionView | undefined, shuttingDown: boolean): { serving: boolean; components: ComponentVerdict[] } {
  const components = [supervision(view, shuttingDown), cgroups(view), disk(), descriptors(), inotify(), memoryPressure(), cpuPressure()];
  const serving = !shuttingDown && components.every((c) => !c.critical || c.status !== "not_serving");
  return { serving, components };
}

/** Registers the pressure and headroom gauges (Prometheus) next to the daemon's own. */
export function registerHealthMetrics(registry: { registerGauge(name: string, help: string, read: () => number | { labels: Record<string, string>; value: number }[]): unknown; registerCounter(name: string, help: string, read: () => number | { labels: Record<string, string>; value: number }[]): unknown }): void {
  const pressure = () => (["cpu", "memory", "io"] as const).map((resource) => ({ resource, p: readPressure(resource) }));
  registry.registerGauge("envd_pressure_stall_percent", "Share of time tasks stalled on the resource (PSI, /proc/pressure), percent; kind some or full, window 10s, 60s or 300s", () =>
    pressure().flatMap(({ resource, p }) =>
      "error" in p
        ? []
        : (["some", "full"] as const).flatMap((kind) => {
            const line = p[kind];
            if (!line) return [];
            return [
              { labels: { resource, kind, window: "10s" }, value: line.avg10 },
              { labels: { resource, kind, window: "60s" }, value: line.avg60 },
              { labels: { resource, kind, window: "300s" }, value: line.avg300 },
            ];
          }),
    ),
  );
  registry.registerCounter("envd_pressure_stall_seconds_total", "Total time tasks stalled on the resource (PSI total), in seconds", () =>
    pressure().flatMap(({ resource, p }) =>
      "error" in p ? [] : (["some", "full"] as const).flatMap((kind) => (p[kind] ? [{ labels: { resource, kind }, value: p[kind]!.total / 1e6 }] : [])),
    ),
  );
  registry.registerGauge("envd_inotify_instances", "inotify instances the daemon holds", () => inotifyUsage().instances);
  registry.registerGauge("envd_inotify_watches", "inotify watches the daemon holds", () => inotifyUsage().watches);
  registry.registerGauge("envd_inotify_max_user_instances", "The per-user inotify instance limit (fs.inotify.max_user_instances)", () => readNumber("/proc/sys/fs/inotify/max_user_instances"));
  registry.registerGauge("envd_inotify_max_user_watches", "The per-user inotify watch limit (fs.inotify.max_user_watches)", () => readNumber("/proc/sys/fs/inotify/max_user_watches"));
  registry.registerGauge("envd_system_file_handles", "File handles allocated on the machine (/proc/sys/fs/file-nr)", () => systemFiles()?.allocated ?? NaN);
  registry.registerGauge("envd_system_file_handles_max", "The machine's file handle limit (fs.file-max)", () => systemFiles()?.max ?? NaN);
  const disks = (field: "free" | "inodes") =>
    diskPaths().flatMap((path) => {
      try {
        const s = statfsSync(path);
        return [{ labels: { path }, value: field === "free" ? s.bavail * s.bsize : s.ffree }];
      } catch {
        return [];
      }
    });
  registry.registerGauge("envd_disk_free_bytes", "Bytes free to unprivileged users on the filesystems uploads land on (root, temporary directory)", () => disks("free"));
  registry.registerGauge("envd_disk_free_inodes", "Free inodes on the filesystems uploads land on", () => disks("inodes"));
}
