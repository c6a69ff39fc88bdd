import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CgroupManager, ProcessCgroup } from "./cgroup.js";
import { daemonDir, killPids, LEFTOVER, readNumber, readPids, readText, releaseDirs, removeDirs, writeControl } from "./cgroup-fs.js";
import { LimitError, type CgroupLimit, type ResourceLimits } from "./limits.js";
import { emptyUsage, parseKeyed, type ResourceUsage } from "./usage.js";

/** Controllers envd-ts enables for its cgroups when the hierarchy offers them. */
const WANTED = ["memory", "pids", "cpu", "io"];
/** The workload's tree at the top of the hierarchy. */
export const WORKLOAD_DIR = "envd-ts";
/** The leaf a daemon living at the root of a cgroup namespace moves into, so the root may delegate. */
const DAEMON_LEAF = "envd-daemon";
/** Weights of the workload against its siblings (the daemon's unit sits in system.slice at 100, itself at 1000). */
const WORKLOAD_CPU_WEIGHT = "50";
const WORKLOAD_IO_WEIGHT = "default 10";
const CPU_PERIOD_US = 100_000;

/**
 * cgroup v2. Where the daemon is a service of the machine's own systemd (a sandbox VM) or sits
 * at the root of its cgroup namespace, the workload lives in a tree of its own at the top of the
 * hierarchy, <mount>/envd-ts/<daemon pid>/<run>, not below the daemon's own cgroup (E2B's envd
 * does the same with its user/ptys/socats groups). Three reasons:
 * - cgroup v2's "no internal processes" rule: a cgroup that holds a process (the daemon in
 *   envd.service) cannot hand memory, pids or cpu to children (EBUSY, or "domain invalid");
 * - systemd stopping or killing envd.service kills everything in the unit's cgroup, so
 *   commands below it would die with every crash or restart of the daemon;
 * - the unit's weights and memory protection are the daemon's; the workload gets its own
 *   (a memory ceiling that leaves a reserve, lower CPU and I/O weights: see fenceWorkload).
 * Anywhere else (a container sharing the host's cgroup namespace, a nested systemd) the tree is
 * <daemon's cgroup>/envd-ts and the daemon moves into a leaf beside it, so the workload never
 * leaves the daemon's own confinement.
 * A hierarchy that offers no controllers (the empty unified mount of a hybrid system) still
 * places processes, measures CPU time (cpu.stat is always there) and kills trees
 * (cgroup.kill), but refuses memory, pids and CPU bandwidth limits.
 */
export class CgroupV2Manager implements CgroupManager {
  readonly version = "v2" as const;

  private constructor(
    private readonly base: string,
    private readonly controllers: Set<string>,
    /** Why controllers are missing, for the refusals. */
    private readonly problems: string[],
    /** What the workload's own cgroup was given (memory ceiling, weights) and what it could not get. */
    private readonly fence: { applied: Record<string, string>; problems: string[] },
  ) {}

  startupWarnings(): string[] {
    return [...this.problems, ...this.fence.problems];
  }

  workloadFence(): Record<string, string> {
    return this.fence.applied;
  }

  /**
   * Prepares <mount>/envd-ts/<pid> and enables what controllers it can.
   * @param selfPath the daemon's own cgroup, relative to the mount
   */
  static init(mount: string, selfPath: string, memTotalBytes = hostMemTotal()): CgroupV2Manager {
    // At the top when the daemon is a system service of this machine's own systemd (a sandbox VM)
    // or at the root of its cgroup namespace; anywhere else (a container sharing the host's cgroup
    // namespace, a nested systemd) below its own cgroup, so the workload never leaves the
    // daemon's own confinement.
    const atTop = selfPath === "/" || /^\/[^/]+\.slice\/[^/]+\.service$/.test(selfPath);
    const parent = atTop ? mount : join(mount, selfPath);
    const daemonInParent = !atTop || selfPath === "/";
    const top = join(parent, WORKLOAD_DIR);
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
        let err = enable(dir, c);
        if (err && dir === parent && daemonInParent) err = leaveParent(parent, c);
        if (err) {
          problems.push(err);
          break;
        }
      }
    }
    const enabled = new Set((readText(join(base, "cgroup.subtree_control")) ?? "").split(/\s+/).filter(Boolean));
    const missing = WANTED.filter((c) => !available.has(c));
    if (missing.length) problems.unshift(`${join(parent, "cgroup.controllers")} offers ${[...available].join(" ") || "no controllers"}`);
    const fence = fenceWorkload(top, memTotalBytes);
    return new CgroupV2Manager(base, enabled, problems, fence);
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
    // What plain runs left running keeps its directory (and so the daemon's) in place.
    await removeDirs([join(this.base, LEFTOVER), this.base], [], 10);
  }

  track(name: string): ProcessCgroup {
    return this.create(name, {});
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

  release(): Promise<void> {
    return releaseDirs(this.paths);
  }
}

/** Turns controller c on in dir's cgroup.subtree_control; undefined when done, else why not. */
function enable(dir: string, c: string): string | undefined {
  const enabled = (readText(join(dir, "cgroup.subtree_control")) ?? "").split(/\s+/);
  if (enabled.includes(c)) return undefined;
  try {
    writeControl(join(dir, "cgroup.subtree_control"), `+${c}`, `the ${c} controller`);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * A daemon living in the cgroup that should hold the workload (the root of its cgroup namespace
 * in a container, or its own cgroup) keeps that cgroup from delegating controllers (cgroup v2's
 * "no internal processes" rule: EBUSY). It moves itself into a leaf and tries again; other
 * processes still there (an init such as tini) keep the refusal, reported as is.
 */
function leaveParent(parent: string, c: string): string | undefined {
  const leaf = join(parent, DAEMON_LEAF);
  try {
    mkdirSync(leaf, { recursive: true });
    writeFileSync(join(leaf, "cgroup.procs"), String(process.pid));
  } catch (err) {
    return `cannot move the daemon out of ${parent} into ${leaf}: ${(err as Error).message}`;
  }
  return enable(parent, c);
}

/**
 * Gives the workload's tree a memory ceiling that leaves a reserve for the daemon and the system
 * (min(total/4, 256 MiB); E2B's envd keeps min(total/8, 128 MiB), which in a 1 GiB VM left the
 * daemon stalling in reclaim under a memory hog; memory.high equal to memory.max: reclaim, then the
 * OOM killer inside the workload, never outside it) and CPU and I/O weights below the daemon's.
 * Each setting that cannot be written (controller not enabled) is a problem to report.
 */
function fenceWorkload(top: string, memTotal: number): { applied: Record<string, string>; problems: string[] } {
  const applied: Record<string, string> = {};
  const problems: string[] = [];
  const reserve = Math.min(Math.floor(memTotal / 4), 256 * 1024 * 1024);
  const want: [string, string][] = [
    ["cpu.weight", WORKLOAD_CPU_WEIGHT],
    ["io.weight", WORKLOAD_IO_WEIGHT],
  ];
  if (memTotal > 0) want.push(["memory.max", String(memTotal - reserve)], ["memory.high", String(memTotal - reserve)]);
  for (const [file, value] of want) {
    if (!existsSync(join(top, file))) {
      problems.push(`${join(top, file)} is missing (its controller is not enabled): the workload runs without ${file}`);
      continue;
    }
    try {
      writeControl(join(top, file), value, file);
      applied[file] = value;
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return { applied, problems };
}

function hostMemTotal(): number {
  try {
    const kb = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "latin1"))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}
