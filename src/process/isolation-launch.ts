import { existsSync } from "node:fs";
import { constants } from "node:os";
import type { ExecutionOptions } from "../isolation/execution.js";
import type { ProcessCgroup } from "../limits/cgroup.js";
import type { LaunchOptions } from "./launcher.js";

const { errno } = constants;

/** Kernel settings a confined root must not change (see isolationLaunchOptions). */
const KERNEL_KNOBS = ["/proc/sys", "/proc/sysrq-trigger"];

/**
 * The launcher options that put a run into its cgroup (limiting, or only tracking the tree) and
 * apply its rlimits and isolation. A run with limits held in a cgroup, or with masked or
 * read-only paths, is confined: not even root in it can lift them. Without any cgroup the
 * command becomes a subreaper, so its orphans stay in the tree that kill and timeout walk.
 */
export function isolationLaunchOptions(exec: ExecutionOptions, cgroup: ProcessCgroup | undefined): LaunchOptions {
  const s = exec.security;
  const o: LaunchOptions = {};
  if (cgroup) o.cgroupProcs = cgroup.procsFiles;
  else o.subreaper = true;
  if ((exec.cgroupLimits && cgroup) || s.maskedPaths.length || s.readonlyPaths.length) o.confine = true;
  if (exec.rlimits.length) o.rlimits = exec.rlimits.map((r) => `${r.name}=${r.soft}:${r.hard}`);
  if (s.maskedPaths.length) o.maskedPaths = s.maskedPaths;
  // Root needs no capability to write a sysctl: kernel.core_pattern or kernel.modprobe would make the
  // kernel run a program of its choice as root outside its cgroup. A confined process gets the
  // kernel's knobs read-only, as container runtimes do.
  const readonly = o.confine ? [...s.readonlyPaths, ...KERNEL_KNOBS.filter((p) => !s.readonlyPaths.includes(p) && existsSync(p))] : s.readonlyPaths;
  if (readonly.length) o.readonlyPaths = readonly;
  if (s.caps) {
    o.capsKeep = s.caps.keep;
    o.capsAdd = s.caps.add;
  }
  if (s.noNewPrivs) o.noNewPrivs = true;
  if (s.userNamespace) o.userNamespace = true;
  if (s.seccomp) {
    if (s.seccomp.mode === "deny") o.seccompDeny = s.seccomp.numbers;
    else o.seccompAllow = s.seccomp.numbers;
    if (s.seccomp.denyNamespaces) o.seccompDenyNs = true;
  }
  return o;
}

/** Why the kernel refuses a user namespace, by errno (see unshare(2)). */
const USERNS_CAUSE: Record<number, string> = {
  [errno.EPERM]: "not permitted here: a container, seccomp or security module forbids it",
  [errno.EINVAL]: "the kernel has no user namespace support",
  [errno.ENOSPC]: "user.max_user_namespaces is 0 or reached",
};

/** What a failing launcher stage was doing, and why if known, for the failed_precondition message. */
export function stageText(stage: string, errno: number): string {
  const text = STAGE_TEXT[stage] ?? stage;
  const cause = stage === "userns" ? USERNS_CAUSE[errno] : undefined;
  return cause ? `${text} (${cause})` : text;
}

const STAGE_TEXT: Record<string, string> = {
  cgroup: "joining the process's cgroup",
  cgroupns: "creating a cgroup namespace",
  cgroupfs: "making the cgroup filesystems read-only",
  subreaper: "becoming a child subreaper",
  rlimit: "setting rlimits (raising a hard limit needs CAP_SYS_RESOURCE)",
  mountns: "creating a private mount namespace",
  userns: "creating a user namespace",
  userns_map: "mapping the user namespace's uid and gid (the daemon needs CAP_SETUID and CAP_SETGID, or to run as the run-as user)",
  mask: "masking a path",
  readonly: "making a path read-only",
  caps: "setting capabilities",
  no_new_privs: "setting no_new_privs",
  seccomp: "installing the seccomp filter",
};
