import { SYSCALL_TABLE } from "./syscall-table.js";

/** The syscall table of the architecture the daemon runs on; undefined where seccomp is not supported. */
export function syscallTable(arch: string = process.arch): Readonly<Record<string, number>> | undefined {
  return arch === "x64" || arch === "arm64" ? SYSCALL_TABLE[arch] : undefined;
}

/** Whether a name is a syscall on any supported architecture (so "iopl" is valid on aarch64, just absent). */
export function isKnownSyscall(name: string): boolean {
  return name in SYSCALL_TABLE.x64 || name in SYSCALL_TABLE.arm64;
}

/**
 * Syscall names → this architecture's numbers. Names that exist only on
 * another architecture are skipped (there is nothing to filter); names that
 * exist nowhere are returned in `unknown`.
 */
export function resolveSyscalls(names: Iterable<string>, arch: string = process.arch): { numbers: number[]; unknown: string[] } {
  const table = syscallTable(arch) ?? {};
  const numbers = new Set<number>();
  const unknown: string[] = [];
  for (const name of names) {
    const nr = table[name];
    if (nr !== undefined) numbers.add(nr);
    else if (!isKnownSyscall(name)) unknown.push(name);
  }
  return { numbers: [...numbers].sort((a, b) => a - b), unknown };
}
