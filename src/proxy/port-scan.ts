import { readFile, readdir, readlink } from "node:fs/promises";
import { endianness } from "node:os";

/** One TCP socket in state LISTEN, as the kernel lists it. */
export interface Listener {
  address: string;
  port: number;
  family: "tcp4" | "tcp6";
  /** Socket inode: the key to find the owning process through /proc/<pid>/fd. */
  inode: number;
}

const LISTEN = "0A";
const LITTLE_ENDIAN = endianness() === "LE";

/** The kernel prints each 32-bit word of an address in host byte order. */
function wordBytes(hex: string): number[] {
  const bytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return LITTLE_ENDIAN ? bytes.reverse() : bytes;
}

/** "0100007F" → "127.0.0.1"; 32 hex digits → a compressed IPv6 text ("::1", "::ffff:127.0.0.1"). */
export function decodeProcAddress(hex: string): string {
  if (hex.length === 8) return wordBytes(hex).join(".");
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 8) bytes.push(...wordBytes(hex.slice(i, i + 8)));
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join(".")}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // The URL parser prints the canonical compressed form (RFC 5952).
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}

/** Parses the text of /proc/net/tcp or /proc/net/tcp6, keeping LISTEN sockets. */
export function parseProcNetTcp(text: string, family: "tcp4" | "tcp6"): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN) continue;
    const [addrHex, portHex] = f[1]!.split(":");
    if (!addrHex || !portHex) continue;
    out.push({ address: decodeProcAddress(addrHex), port: parseInt(portHex, 16), family, inode: Number(f[9]) });
  }
  return out;
}

/** Every listening TCP socket in the daemon's network namespace (IPv6 is skipped when absent). */
export async function scanListeners(): Promise<Listener[]> {
  const read = (path: string) => readFile(path, "utf8").catch(() => "");
  const [v4, v6] = await Promise.all([read("/proc/net/tcp"), read("/proc/net/tcp6")]);
  return [...parseProcNetTcp(v4, "tcp4"), ...parseProcNetTcp(v6, "tcp6")];
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return v4.startsWith("127.") || address === "::1";
}

/** Socket inodes held by process `pid` ("self" for the daemon). */
export async function socketInodes(pid: number | "self"): Promise<Set<number>> {
  const inodes = new Set<number>();
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = await readdir(dir);
  } catch {
    return inodes;
  }
  await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`${dir}/${fd}`).catch(() => "");
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m) inodes.add(Number(m[1]));
    }),
  );
  return inodes;
}

/** The owning pid and command name of each wanted inode, for processes the daemon may inspect. */
export async function socketOwners(wanted: Set<number>): Promise<Map<number, { pid: number; name: string }>> {
  const owners = new Map<number, { pid: number; name: string }>();
  if (wanted.size === 0) return owners;
  const pids = (await readdir("/proc").catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const p of pids) {
    const pid = Number(p);
    const inodes = await socketInodes(pid);
    let name: string | undefined;
    for (const inode of inodes) {
      if (!wanted.has(inode) || owners.has(inode)) continue;
      name ??= (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
      owners.set(inode, { pid, name });
    }
    if (owners.size === wanted.size) break;
  }
  return owners;
}
