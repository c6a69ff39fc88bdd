import type { ChildSpec } from "./child.js";

/**
 * What the launcher (native/src/launcher.c) applies between fork and exec. Every
 * field maps to one flag through LAUNCH_FLAGS, so adding a limit or isolation
 * option (docs/limits-isolation.md) means one row here and one row in launcher.c.
 */
export interface LaunchOptions {
  /** Fd in the child that reports failures (see launcher.c); close-on-exec there. */
  statusFd?: number;
  setsid?: boolean;
  oomScoreAdj?: number;
  nice?: number;
  /** I/O class and level, e.g. [2, 4] for best-effort level 4. */
  ionice?: [number, number];
  /** Identity: all three, or none to keep the daemon's. */
  groups?: number[];
  gid?: number;
  uid?: number;
  /** Checked as the target user, after the identity change. */
  cwd?: string;
  unsetEnv?: string[];
  /** NAME=VALUE; argv is world-readable, so never secrets. */
  setEnv?: string[];
  /** PTY mode: the keeper waits on this fd until the daemon drained the terminal. */
  ptyHold?: number;
  /** cgroup.procs files the launcher joins before anything else (launcher-limits.c). */
  cgroupProcs?: string[];
  /** "nofile=1024:1024" */
  rlimits?: string[];
  /** Private mount namespace with these paths masked or read-only (launcher-mounts.c). */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  /** A user namespace in which uid and gid are 0, instead of setgid/setuid (launcher-userns.c). */
  userNamespace?: boolean;
  /** Capability masks (launcher-security.c): keep at most, and add (ambient for non-root). */
  capsKeep?: bigint;
  capsAdd?: bigint;
  noNewPrivs?: boolean;
  /** Seccomp: syscall numbers to deny (EPERM), or the only ones to allow. */
  seccompDeny?: number[];
  seccompAllow?: number[];
  /** Also deny namespace creation through clone/clone3. */
  seccompDenyNs?: boolean;
  /** The command cannot lift its limits or isolation, even as root (launcher-confine.c). */
  confine?: boolean;
  /** Orphans of the command's tree stay in it (no cgroup tracks the tree). */
  subreaper?: boolean;
}

type FlagRow = { [K in keyof LaunchOptions]-?: { key: K; flag: string; format: (v: NonNullable<LaunchOptions[K]>) => string[] | null } }[keyof LaunchOptions];

/** The flag table (null from format: leave the flag out), in the order the arguments are written (the launcher's order of steps is fixed in C). */
const LAUNCH_FLAGS: FlagRow[] = [
  { key: "statusFd", flag: "--status-fd", format: (v) => [String(v)] },
  { key: "setsid", flag: "--setsid", format: (v) => (v ? [] : null) },
  { key: "oomScoreAdj", flag: "--oom-score-adj", format: (v) => [String(v)] },
  { key: "nice", flag: "--nice", format: (v) => [String(v)] },
  { key: "ionice", flag: "--ionice", format: (v) => [`${v[0]}:${v[1]}`] },
  { key: "groups", flag: "--groups", format: (v) => [v.join(",")] },
  { key: "gid", flag: "--gid", format: (v) => [String(v)] },
  { key: "uid", flag: "--uid", format: (v) => [String(v)] },
  { key: "cwd", flag: "--cwd", format: (v) => [v] },
  { key: "ptyHold", flag: "--pty-hold", format: (v) => [String(v)] },
  { key: "userNamespace", flag: "--user-ns", format: (v) => (v ? [] : null) },
  { key: "capsKeep", flag: "--caps-keep", format: (v) => [v.toString(16)] },
  { key: "capsAdd", flag: "--caps-add", format: (v) => [v.toString(16)] },
  { key: "noNewPrivs", flag: "--no-new-privs", format: (v) => (v ? [] : null) },
  { key: "seccompDeny", flag: "--seccomp-deny", format: (v) => (v.length ? [v.join(",")] : null) },
  { key: "seccompAllow", flag: "--seccomp-allow", format: (v) => [v.join(",")] },
  { key: "seccompDenyNs", flag: "--seccomp-deny-ns", format: (v) => (v ? [] : null) },
  { key: "confine", flag: "--confine", format: (v) => (v ? [] : null) },
  { key: "subreaper", flag: "--subreaper", format: (v) => (v ? [] : null) },
];

/** Flags given once per value. */
const REPEATED_FLAGS: [keyof LaunchOptions & ("unsetEnv" | "setEnv" | "cgroupProcs" | "rlimits" | "maskedPaths" | "readonlyPaths"), string][] = [
  ["cgroupProcs", "--cgroup-procs"],
  ["rlimits", "--rlimit"],
  ["maskedPaths", "--mask"],
  ["readonlyPaths", "--readonly"],
  ["unsetEnv", "--unsetenv"],
  ["setEnv", "--setenv"],
];

/** The launcher's argv (without argv[0]) for running `command` with `opts`. */
export function launcherArgs(opts: LaunchOptions, command: string[]): string[] {
  const out: string[] = [];
  for (const row of LAUNCH_FLAGS) {
    const value = opts[row.key];
    if (value === undefined) continue;
    const rest = (row.format as (v: unknown) => string[] | null)(value);
    if (rest === null) continue;
    out.push(row.flag, ...rest);
  }
  for (const [key, flag] of REPEATED_FLAGS) for (const v of opts[key] ?? []) out.push(flag, v);
  out.push("--", ...command);
  return out;
}

/** A failure the launcher reported before exec, or at exec. */
export interface LaunchFailure {
  stage: string;
  errno: number;
}

/** Parses the launcher's status record ("exec:2\n"); undefined when exec succeeded (nothing written). */
export function parseLaunchStatus(text: string): LaunchFailure | undefined {
  const m = /^([a-z_-]+):(\d+)/.exec(text.trim());
  if (!m) return text.trim() === "" ? undefined : { stage: "launcher", errno: 0 };
  return { stage: m[1]!, errno: Number(m[2]) };
}

/** Launcher stages that apply limits and isolation: their failures are failed_precondition, not the caller's mistake. */
export const ISOLATION_STAGES = new Set(["cgroup", "cgroupns", "cgroupfs", "subreaper", "rlimit", "mountns", "mask", "readonly", "userns", "userns_map", "caps", "no_new_privs", "seccomp"]);

/** Options every child gets from the launcher: E2B's priorities, the user's identity, the cwd, then its limits and isolation. */
export function commonLaunchOptions(spec: ChildSpec): LaunchOptions {
  const opts: LaunchOptions = { ...spec.isolation, oomScoreAdj: 100, nice: 0, ionice: [2, 4], cwd: spec.cwd };
  if (spec.identity) {
    opts.groups = spec.identity.groups;
    opts.gid = spec.identity.gid;
    opts.uid = spec.identity.uid;
  }
  return opts;
}
