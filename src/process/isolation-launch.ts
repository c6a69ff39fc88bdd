import type { ExecutionOptions } from "../isolation/execution.js";
import type { ProcessCgroup } from "../limits/cgroup.js";
import type { LaunchOptions } from "./launcher.js";

/** The launcher options that put a run into its cgroup and apply its rlimits and isolation. */
export function isolationLaunchOptions(exec: ExecutionOptions, cgroup: ProcessCgroup | undefined): LaunchOptions {
  const s = exec.security;
  const o: LaunchOptions = {};
  if (cgroup) o.cgroupProcs = cgroup.procsFiles;
  if (exec.rlimits.length) o.rlimits = exec.rlimits.map((r) => `${r.name}=${r.soft}:${r.hard}`);
  if (s.maskedPaths.length) o.maskedPaths = s.maskedPaths;
  if (s.readonlyPaths.length) o.readonlyPaths = s.readonlyPaths;
  if (s.caps) {
    o.capsKeep = s.caps.keep;
    o.capsAdd = s.caps.add;
  }
  if (s.noNewPrivs) o.noNewPrivs = true;
  if (s.seccomp) {
    if (s.seccomp.mode === "deny") o.seccompDeny = s.seccomp.numbers;
    else o.seccompAllow = s.seccomp.numbers;
    if (s.seccomp.denyNamespaces) o.seccompDenyNs = true;
  }
  return o;
}

/** What a failing launcher stage was doing, for the failed_precondition message. */
export const STAGE_TEXT: Record<string, string> = {
  cgroup: "joining the process's cgroup",
  rlimit: "setting rlimits (raising a hard limit needs CAP_SYS_RESOURCE)",
  mountns: "creating a private mount namespace",
  mask: "masking a path",
  readonly: "making a path read-only",
  caps: "setting capabilities",
  no_new_privs: "setting no_new_privs",
  seccomp: "installing the seccomp filter",
};
