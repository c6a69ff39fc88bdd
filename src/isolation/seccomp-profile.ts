import { readFileSync } from "node:fs";

/**
 * The built-in profile: what container runtimes deny by default, because a
 * sandboxed program has no business doing it and each has been a way out or
 * a kernel attack surface: mounting and namespaces (mount, umount2, the new
 * mount API, pivot_root, unshare, setns, and clone with CLONE_NEW* flags),
 * kernel modules and kexec, BPF and perf events, the kernel keyring, clock
 * setting, swap, reboot, accounting and quotas, handle-based opens that
 * escape a chroot, userfaultfd, and obsolete syscalls. ptrace is not denied
 * (debuggers and strace keep working); add it with a deny list.
 */
export const DEFAULT_SECCOMP_DENY: readonly string[] = [
  "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module", "finit_module",
  "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "init_module", "ioperm", "iopl", "kcmp",
  "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "nfsservctl",
  "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root", "query_module", "quotactl", "quotactl_fd",
  "reboot", "request_key", "setns", "settimeofday", "swapoff", "swapon", "syslog", "sysfs", "_sysctl", "umount2",
  "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
];

/** Syscalls an allow list always gets: the launcher must still exec the command and exit. */
export const ALLOW_LIST_ESSENTIALS: readonly string[] = ["execve", "exit", "exit_group"];

/**
 * Reads a custom profile file: syscall names to deny, separated by newlines,
 * spaces or commas; `#` starts a comment.
 */
export function readProfileFile(path: string): string[] {
  const text = readFileSync(path, "utf8");
  return text
    .split("\n")
    .map((l) => l.replace(/#.*/, ""))
    .join(" ")
    .split(/[\s,]+/)
    .filter(Boolean);
}
