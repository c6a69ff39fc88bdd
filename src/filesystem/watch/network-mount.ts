import { statfsSync } from "node:fs";

/** statfs f_type magic numbers of network and FUSE filesystems (linux/magic.h). */
const NETWORK_MAGIC = new Set([
  0x6969, // NFS
  0xff534d42, // CIFS
  0x517b, // SMB
  0xfe534d42, // SMB2
  0x65735546, // FUSE
]);

/**
 * Whether `path` lives on NFS, CIFS/SMB or FUSE, where inotify sees only local
 * changes; envd refuses to watch those unless asked. Throws on statfs failure.
 */
export function isNetworkMount(path: string): boolean {
  const type = Number(statfsSync(path).type) >>> 0;
  return NETWORK_MAGIC.has(type);
}
