import { existsSync, mkdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import type { CgroupManager, ProcessCgroup } from "./cgroup.js";
import { daemonDir, killPids, LEFTOVER, readNumber, readPids, readText, releaseDirs, removeDirs, writeControl } from "./cgroup-fs.js";
import { LimitError, type CgroupLimit, type ResourceLimits } from "./limits.js";
import { emptyUsage, parseKeyed, type ResourceUsage } from "./usage.js";

/** The v1 controllers envd-ts uses; each may be its own hierarchy or share one (cpu,cpuacct). */
export type V1Controller = "memory" | "cpu" | "cpuacct" | "pids" | "blkio";
const CPU_PERIOD_US = 100_000;

/**
 * cgroup v1: per run, one directory in each hierarchy it needs, under
 * <mount><daemon's path in that hierarchy>/envd-ts/<daemon pid>. Memory, CPU accounting,
 * pids (and blkio for I/O) are always joined when mounted, so usage is
 * complete; cpu only when a bandwidth limit is asked for.
 */
export class CgroupV1Manager implements CgroupManager {
  readonly version = "v1" as const;

  private readonly bases = new Map<V1Controller, string>();

  /** @param tops controller → its envd-ts directory (this daemon's directory goes beneath) */
  constructor(tops: Map<V1Controller, string>) {
    const made = new Map<string, string>();
    for (const [c, top] of tops) {
      let dir = made.get(top);
      if (!dir) {
        try {
          mkdirSync(top, { recursive: true });
          dir = daemonDir(top);
          mkdirSync(dir, { recursive: true });
        } catch (err) {
          throw new LimitError(`cannot create ${dir ?? top}: ${(err as Error).message}`);
        }
        made.set(top, dir);
      }
      this.bases.set(c, dir);
    }
  }

  startupWarnings(): string[] {
    return [];
  }

  workloadFence(): Record<string, string> {
    // A plain command joins only the pids hierarchy here (one mkdir per command); a workload-wide
    // memory ceiling and CPU weight would put every command in the memory and cpu hierarchies too.
    return { fenced: "no: on cgroup v1 the workload gets no memory ceiling or lower CPU weight (cgroup v2 has them)" };
  }

  async close(): Promise<void> {
    const bases = [...new Set(this.bases.values())];
    // What plain runs left running keeps its directory (and so the daemon's) in place.
    await removeDirs([...bases.map((b) => join(b, LEFTOVER)), ...bases], [], 10);
  }

  describe(): string {
    return `cgroup v1: ${[...this.bases].map(([c, d]) => `${c} at ${d}`).join(", ") || "no controllers"}`;
  }

  unsupported(limit: CgroupLimit): string | undefined {
    const need: V1Controller = limit === "memoryMaxBytes" ? "memory" : limit === "pidsMax" ? "pids" : limit === "cpuCores" ? "cpu" : "cpuacct";
    return this.bases.has(need) ? undefined : `no cgroup v1 hierarchy with the ${need} controller is mounted`;
  }

  track(name: string): ProcessCgroup {
    // One hierarchy is enough to find every process; pids is the cheapest to create.
    const c = (["pids", "cpuacct", "memory", "blkio", "cpu"] as const).find((h) => this.bases.has(h));
    if (!c) throw new LimitError("no cgroup v1 hierarchy to track processes in");
    const dir = join(this.bases.get(c)!, name);
    try {
      if (existsSync(dir)) rmdirSync(dir);
      mkdirSync(dir);
    } catch (err) {
      throw new LimitError(`cannot create cgroup ${dir}: ${(err as Error).message}`);
    }
    return new CgroupV1(new Map([[c, dir]]), [dir]);
  }

  create(name: string, limits: ResourceLimits): ProcessCgroup {
    for (const l of ["memoryMaxBytes", "pidsMax", "cpuCores", "cpuTimeMs"] as const) {
      const why = limits[l] !== undefined ? this.unsupported(l) : undefined;
      if (why) throw new LimitError(why);
    }
    const wanted: V1Controller[] = ["memory", "cpuacct", "pids", "blkio"];
    if (limits.cpuCores !== undefined) wanted.push("cpu");
    const dirs = new Map<V1Controller, string>();
    const created: string[] = [];
    try {
      for (const c of wanted) {
        const base = this.bases.get(c);
        if (!base) continue;
        const dir = join(base, name);
        if (!created.includes(dir)) {
          try {
            if (existsSync(dir)) rmdirSync(dir);
            mkdirSync(dir);
          } catch (err) {
            throw new LimitError(`cannot create cgroup ${dir}: ${(err as Error).message}`);
          }
          created.push(dir);
        }
        dirs.set(c, dir);
      }
      const mem = dirs.get("memory");
      if (limits.memoryMaxBytes !== undefined && mem) {
        writeControl(join(mem, "memory.limit_in_bytes"), String(limits.memoryMaxBytes), "memory.limit_in_bytes");
        // Swap counts too, so the limit cannot be dodged by swapping (the file exists only with swap accounting).
        if (existsSync(join(mem, "memory.memsw.limit_in_bytes"))) writeControl(join(mem, "memory.memsw.limit_in_bytes"), String(limits.memoryMaxBytes), "memory.memsw.limit_in_bytes");
      }
      const pids = dirs.get("pids");
      if (limits.pidsMax !== undefined && pids) writeControl(join(pids, "pids.max"), String(limits.pidsMax), "pids.max");
      const cpu = dirs.get("cpu");
      if (limits.cpuCores !== undefined && cpu) {
        writeControl(join(cpu, "cpu.cfs_period_us"), String(CPU_PERIOD_US), "cpu.cfs_period_us");
        writeControl(join(cpu, "cpu.cfs_quota_us"), String(Math.max(1000, Math.round(limits.cpuCores * CPU_PERIOD_US))), "cpu.cfs_quota_us");
      }
    } catch (err) {
      for (const d of created) {
        try {
          rmdirSync(d);
        } catch {
          /* keep the original error */
        }
      }
      throw err;
    }
    return new CgroupV1(dirs, created);
  }
}

class CgroupV1 implements ProcessCgroup {
  readonly version = "v1" as const;
  readonly procsFiles: string[];

  constructor(
    private readonly dirs: Map<V1Controller, string>,
    readonly paths: string[],
  ) {
    this.procsFiles = paths.map((d) => join(d, "cgroup.procs"));
  }

  private file(c: V1Controller, name: string): string | undefined {
    const d = this.dirs.get(c);
    return d ? join(d, name) : undefined;
  }

  cpuUsageUs(): number | undefined {
    const f = this.file("cpuacct", "cpuacct.usage");
    const ns = f ? readNumber(f) : undefined;
    return ns === undefined ? undefined : Math.floor(ns / 1000);
  }

  usage(): ResourceUsage {
    const u = emptyUsage();
    u.source = "cgroup_v1";
    const num = (c: V1Controller, name: string) => {
      const f = this.file(c, name);
      return f ? readNumber(f) : undefined;
    };
    const userNs = num("cpuacct", "cpuacct.usage_user");
    const sysNs = num("cpuacct", "cpuacct.usage_sys");
    if (userNs !== undefined && sysNs !== undefined) {
      u.cpuUserUs = Math.floor(userNs / 1000);
      u.cpuSystemUs = Math.floor(sysNs / 1000);
    } else {
      const f = this.file("cpuacct", "cpuacct.stat");
      const stat = parseKeyed(f ? readText(f) : undefined);
      u.cpuUserUs = (stat.get("user") ?? 0) * 10_000;
      u.cpuSystemUs = (stat.get("system") ?? 0) * 10_000;
    }
    u.memoryCurrentBytes = num("memory", "memory.usage_in_bytes") ?? 0;
    u.memoryPeakBytes = Math.max(num("memory", "memory.max_usage_in_bytes") ?? 0, u.memoryCurrentBytes);
    const oom = this.file("memory", "memory.oom_control");
    u.oomKills = parseKeyed(oom ? readText(oom) : undefined).get("oom_kill") ?? 0;
    const tasks = this.file("pids", "tasks") ?? this.file("memory", "tasks");
    u.tasksCurrent = num("pids", "pids.current") ?? (tasks ? readPids(tasks).length : 0);
    u.tasksPeak = Math.max(num("pids", "pids.peak") ?? 0, u.tasksCurrent);
    const blk = this.file("blkio", "blkio.throttle.io_service_bytes_recursive");
    for (const line of (blk ? readText(blk) : "")?.split("\n") ?? []) {
      const m = /^\d+:\d+ (Read|Write) (\d+)/.exec(line);
      if (m?.[1] === "Read") u.ioReadBytes += Number(m[2]);
      else if (m?.[1] === "Write") u.ioWriteBytes += Number(m[2]);
    }
    return u;
  }

  members(): number[] {
    const f = this.file("pids", "cgroup.procs") ?? this.procsFiles[0];
    return f ? readPids(f) : [];
  }

  killAll(): void {
    killPids(this.members());
  }

  async remove(): Promise<void> {
    this.killAll();
    // Deepest hierarchy order does not matter; each directory is independent.
    await removeDirs(this.paths, this.procsFiles);
  }

  release(): Promise<void> {
    return releaseDirs(this.paths);
  }
}
