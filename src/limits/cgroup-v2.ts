import { existsSync, mkdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import type { CgroupManager, ProcessCgroup } from "./cgroup.js";
import { daemonDir, killPids, readNumber, readPids, readText, removeDirs, writeControl } from "./cgroup-fs.js";
import { LimitError, type CgroupLimit, type ResourceLimits } from "./limits.js";
import { emptyUsage, parseKeyed, type ResourceUsage } from "./usage.js";

/** Controllers envd-ts enables for its cgroups when the hierarchy offers them. */
const WANTED = ["memory", "pids", "cpu", "io"];
const CPU_PERIOD_US = 100_000;

/**
 * cgroup v2: one directory per run under <daemon's cgroup>/envd-ts/<daemon pid>. Controllers
 * must be enabled in cgroup.subtree_control all the way down; a hierarchy that
 * offers none (the empty unified mount of a hybrid system) still places
 * processes, measures CPU time (cpu.stat is always there) and kills trees
 * (cgroup.kill), but refuses memory, pids and CPU bandwidth limits.
 */
export class CgroupV2Manager implements CgroupManager {
  readonly version = "v2" as const;

  private constructor(
    private readonly base: string,
    private readonly controllers: Set<string>,
    private readonly problems: string[],
  ) {}

  /** Prepares <mount><selfPath>/envd-ts/<pid> and enables what controllers it can. */
  static init(mount: string, selfPath: string): CgroupV2Manager {
    const parent = join(mount, selfPath);
    const top = join(parent, "envd-ts");
    let base = top;
    try {
      mkdirSync(top, { recursive: true });
      base = daemonDir(top);
      mkdirSync(base, { recursive: true });
    } catch (err) {
      throw new LimitError(`cannot create ${base}: ${(err as Error).message}`);
    }
    const available = new Set((readText(join(parent, "cgroup.controllers")) ?? "").split(/\s+/).filter(Boolean));
    const problems: string[] = [];
    for (const c of WANTED) {
      if (!available.has(c)) continue;
      for (const dir of [parent, top, base]) {
        const enabled = (readText(join(dir, "cgroup.subtree_control")) ?? "").split(/\s+/);
        if (enabled.includes(c)) continue;
        try {
          writeControl(join(dir, "cgroup.subtree_control"), `+${c}`, `the ${c} controller`);
        } catch (err) {
          problems.push((err as Error).message);
          break;
        }
      }
    }
    const enabled = new Set((readText(join(base, "cgroup.subtree_control")) ?? "").split(/\s+/).filter(Boolean));
    const missing = WANTED.filter((c) => !available.has(c));
    if (missing.length) problems.unshift(`${join(parent, "cgroup.controllers")} offers ${[...available].join(" ") || "no controllers"}`);
    return new CgroupV2Manager(base, enabled, problems);
  }

  describe(): string {
    return `cgroup v2 at ${this.base}, controllers: ${[...this.controllers].join(" ") || "none"}`;
  }

  unsupported(limit: CgroupLimit): string | undefined {
    const need = limit === "memoryMaxBytes" ? "memory" : limit === "pidsMax" ? "pids" : limit === "cpuCores" ? "cpu" : undefined;
    if (need === undefined || this.controllers.has(need)) return undefined;
    return `the ${need} controller is not enabled for ${this.base} (${this.problems.join("; ") || "not delegated"})`;
  }

  async close(): Promise<void> {
    await removeDirs([this.base], [], 10);
  }

  create(name: string, limits: ResourceLimits): ProcessCgroup {
    for (const l of ["memoryMaxBytes", "pidsMax", "cpuCores"] as const) {
      const why = limits[l] !== undefined ? this.unsupported(l) : undefined;
      if (why) throw new LimitError(why);
    }
    const dir = join(this.base, name);
    try {
      if (existsSync(dir)) rmdirSync(dir);
      mkdirSync(dir);
    } catch (err) {
      throw new LimitError(`cannot create cgroup ${dir}: ${(err as Error).message}`);
    }
    try {
      if (limits.memoryMaxBytes !== undefined) {
        writeControl(join(dir, "memory.max"), String(limits.memoryMaxBytes), "memory.max");
        if (existsSync(join(dir, "memory.swap.max"))) writeControl(join(dir, "memory.swap.max"), "0", "memory.swap.max");
      }
      if (limits.pidsMax !== undefined) writeControl(join(dir, "pids.max"), String(limits.pidsMax), "pids.max");
      if (limits.cpuCores !== undefined) {
        const quota = Math.max(1000, Math.round(limits.cpuCores * CPU_PERIOD_US));
        writeControl(join(dir, "cpu.max"), `${quota} ${CPU_PERIOD_US}`, "cpu.max");
      }
    } catch (err) {
      try {
        rmdirSync(dir);
      } catch {
        /* keep the original error */
      }
      throw err;
    }
    return new CgroupV2(dir);
  }
}

class CgroupV2 implements ProcessCgroup {
  readonly version = "v2" as const;
  readonly procsFiles: string[];
  readonly paths: string[];

  constructor(private readonly dir: string) {
    this.procsFiles = [join(dir, "cgroup.procs")];
    this.paths = [dir];
  }

  cpuUsageUs(): number | undefined {
    return parseKeyed(readText(join(this.dir, "cpu.stat"))).get("usage_usec");
  }

  usage(): ResourceUsage {
    const u = emptyUsage();
    u.source = "cgroup_v2";
    const cpu = parseKeyed(readText(join(this.dir, "cpu.stat")));
    u.cpuUserUs = cpu.get("user_usec") ?? 0;
    u.cpuSystemUs = cpu.get("system_usec") ?? 0;
    u.memoryCurrentBytes = readNumber(join(this.dir, "memory.current")) ?? 0;
    u.memoryPeakBytes = Math.max(readNumber(join(this.dir, "memory.peak")) ?? 0, u.memoryCurrentBytes);
    u.oomKills = parseKeyed(readText(join(this.dir, "memory.events"))).get("oom_kill") ?? 0;
    const threads = (readText(join(this.dir, "cgroup.threads")) ?? "").split("\n").filter(Boolean).length;
    u.tasksCurrent = readNumber(join(this.dir, "pids.current")) ?? threads;
    u.tasksPeak = Math.max(readNumber(join(this.dir, "pids.peak")) ?? 0, u.tasksCurrent);
    for (const line of (readText(join(this.dir, "io.stat")) ?? "").split("\n")) {
      u.ioReadBytes += Number(/\brbytes=(\d+)/.exec(line)?.[1] ?? 0);
      u.ioWriteBytes += Number(/\bwbytes=(\d+)/.exec(line)?.[1] ?? 0);
    }
    return u;
  }

  members(): number[] {
    return readPids(this.procsFiles[0]!);
  }

  killAll(): void {
    try {
      writeControl(join(this.dir, "cgroup.kill"), "1", "cgroup.kill");
    } catch {
      killPids(this.members());
    }
  }

  async remove(): Promise<void> {
    this.killAll();
    await removeDirs(this.paths, this.procsFiles);
  }
}
