import type { ResourceLimits } from "../limits/limits.js";

/** One rlimit for the launcher (--rlimit name=soft:hard). */
export interface RlimitSetting {
  name: "as" | "cpu" | "nofile";
  soft: number;
  hard: number;
}

/** Hardening of one process, resolved against the daemon's policy. */
export interface ResolvedSecurity {
  noNewPrivs: boolean;
  /** Why no_new_privs is on although nobody asked (a seccomp filter without CAP_SYS_ADMIN needs it). */
  noNewPrivsImplied: boolean;
  /** undefined: capabilities stay as the identity change leaves them. */
  caps: { keep: bigint; add: bigint } | undefined;
  seccomp: { profile: "default" | "custom"; mode: "deny" | "allow"; numbers: number[]; denyNamespaces: boolean } | undefined;
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Its own user namespace, in which the run-as uid and gid are 0 (so capabilities are computed as for root). */
  userNamespace: boolean;
}

/** Everything the launcher applies to one process beyond E2B's setup: limits and isolation. */
export interface ExecutionOptions {
  /** The limits in force, for reporting. */
  limits: ResourceLimits;
  /** The limits a cgroup enforces; undefined: the process gets no cgroup. */
  cgroupLimits: ResourceLimits | undefined;
  rlimits: RlimitSetting[];
  /** "memory_max_bytes: cgroup_v1", ... */
  enforcement: string[];
  security: ResolvedSecurity;
}

/** What a request asks for (envdts.v1 fields 100-102, decoded); 0 in a limit means "no limit". */
export interface RequestedExecution {
  limits?: ResourceLimits;
  security?: {
    noNewPrivs?: boolean;
    dropCapabilities?: string[];
    addCapabilities?: string[];
    seccompProfile?: string;
    seccompDeny?: string[];
    seccompAllow?: string[];
    seccompAllowOnly?: string[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    userNamespace?: boolean;
  };
}

/** No limits, no hardening: what E2B's envd does. */
export const PLAIN_EXECUTION: ExecutionOptions = {
  limits: {},
  cgroupLimits: undefined,
  rlimits: [],
  enforcement: [],
  security: { noNewPrivs: false, noNewPrivsImplied: false, caps: undefined, seccomp: undefined, maskedPaths: [], readonlyPaths: [], userNamespace: false },
};
