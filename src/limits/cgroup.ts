import type { CgroupLimit, ResourceLimits } from "./limits.js";
import type { ResourceUsage } from "./usage.js";

/** The cgroup of one run of a process. */
export interface ProcessCgroup {
  readonly version: "v1" | "v2";
  /** cgroup.procs files the launcher writes its pid into before it runs the command. */
  readonly procsFiles: string[];
  /** The directories, for ProcessInfo. */
  readonly paths: string[];
  /** CPU time (user + system) of the whole tree so far, in µs; undefined if unreadable. */
  cpuUsageUs(): number | undefined;
  /** Everything readable now (cumulative counters, current and peak values). */
  usage(): ResourceUsage;
  /** Pids of every process in the cgroup (catches children that left the session). */
  members(): number[];
  /** SIGKILLs everything in the cgroup (cgroup.kill on v2). */
  killAll(): void;
  /** Kills what is left and removes the directories; retries while the kernel still lists exiting tasks. */
  remove(): Promise<void>;
  /**
   * Lets what is left live on (a plain command's background processes, as with E2B's envd): moves
   * it to the daemon's shared "leftover" cgroup and removes the directories.
   */
  release(): Promise<void>;
}

/** Creates and tracks per-process cgroups (v2, v1 or none), chosen once at start. */
export interface CgroupManager {
  readonly version: "v1" | "v2" | "none";
  /** One line for the log and the error messages: which hierarchy, which controllers. */
  describe(): string;
  /** Whether this limit can be enforced through a cgroup here; else why not. */
  unsupported(limit: CgroupLimit): string | undefined;
  /** Creates the run's cgroup with its limits written; throws LimitError. */
  create(name: string, limits: ResourceLimits): ProcessCgroup;
  /** What could not be set up (controllers, the workload's fence), for a warning at start. */
  startupWarnings(): string[];
  /** The workload tree's own settings (memory ceiling, weights) as written; empty where there is none. */
  workloadFence(): Record<string, string>;
  /**
   * A cgroup that only tracks a run without limits (one hierarchy on v1), so that kill and
   * timeout reach every descendant, orphans and new sessions included; throws LimitError.
   */
  track(name: string): ProcessCgroup;
  /** Removes the daemon's own directory at shutdown (best effort, once the runs' cgroups are gone). */
  close(): Promise<void>;
}
