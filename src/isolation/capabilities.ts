/** Linux capability names by number (linux/capability.h), without the CAP_ prefix. */
export const CAPABILITY_NAMES = [
  "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap", "linux_immutable",
  "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace",
  "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
  "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
  "checkpoint_restore",
] as const;

/** Every capability this table knows. */
export const ALL_CAPS = (1n << BigInt(CAPABILITY_NAMES.length)) - 1n;

/** Bit of CAP_SYS_ADMIN (installing a seccomp filter without no_new_privs needs it). */
export const CAP_SYS_ADMIN = 1n << 21n;

/** CAP_SYS_RESOURCE: raises hard rlimits; taken from every process with rlimits. */
export const CAP_SYS_RESOURCE = 1n << 24n;

/**
 * What a confined process (limits in a cgroup, masked or read-only paths) loses, so that not even
 * root in it can lift them (native/src/launcher-confine.c says why each): dac_read_search,
 * sys_module, sys_rawio, sys_ptrace, sys_admin, setfcap.
 */
export const CONFINE_DROP_CAPS = (1n << 2n) | (1n << 16n) | (1n << 17n) | (1n << 19n) | CAP_SYS_ADMIN | (1n << 31n);

/**
 * Parses capability names ("CAP_NET_RAW", "net_raw", "ALL") into a bit mask;
 * returns the unknown names so callers can word their own error.
 */
export function parseCapabilities(names: Iterable<string>): { mask: bigint; unknown: string[] } {
  let mask = 0n;
  const unknown: string[] = [];
  for (const raw of names) {
    const n = raw.trim().toLowerCase().replace(/^cap_/, "");
    if (n === "") continue;
    if (n === "all") {
      mask |= ALL_CAPS;
      continue;
    }
    const i = (CAPABILITY_NAMES as readonly string[]).indexOf(n);
    if (i < 0) unknown.push(raw);
    else mask |= 1n << BigInt(i);
  }
  return { mask, unknown };
}

/** "CAP_CHOWN", ... for the bits of a mask. */
export function capabilityNames(mask: bigint): string[] {
  return CAPABILITY_NAMES.filter((_, i) => (mask >> BigInt(i)) & 1n).map((n) => `CAP_${n.toUpperCase()}`);
}
