/** Resource limits of one process tree, resolved (request over daemon defaults); undefined: no limit. */
export interface ResourceLimits {
  memoryMaxBytes?: number;
  cpuTimeMs?: number;
  /** CPU bandwidth in cores (0.5 = half a core). */
  cpuCores?: number;
  pidsMax?: number;
  nofile?: number;
}

/** The limits that live in a cgroup (the rest are rlimits). */
export type CgroupLimit = "memoryMaxBytes" | "cpuCores" | "pidsMax" | "cpuTimeMs";

/** Whether a process with these limits gets its own cgroup. */
export function wantsCgroup(limits: ResourceLimits): boolean {
  return limits.memoryMaxBytes !== undefined || limits.cpuCores !== undefined || limits.pidsMax !== undefined || limits.cpuTimeMs !== undefined;
}

/** The proto field name of a limit, for messages users read. */
export const LIMIT_FIELD: Record<keyof ResourceLimits, string> = {
  memoryMaxBytes: "memory_max_bytes",
  cpuTimeMs: "cpu_time_ms",
  cpuCores: "cpu_cores",
  pidsMax: "pids_max",
  nofile: "nofile",
};

/** A limit or isolation option that cannot be applied on this machine (mapped to failed_precondition). */
export class LimitError extends Error {}
