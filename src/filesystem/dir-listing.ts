import type { EntryInfo } from "../gen/filesystem_pb.js";
import { native } from "../native.js";
import { plainEntryInfo } from "./entry-info.js";

/** What native/src/dirstat.c returns: names and per-entry lstat fields in flat arrays. */
interface RawListing {
  names: Buffer;
  ends: Uint32Array;
  fields: Float64Array;
}

interface DirStatAddon {
  readDirStat(dir: Buffer): RawListing;
  readDirStatAsync(dir: Buffer): Promise<RawListing>;
}

// Field layout per entry, as dirstat.c writes it.
const FIELDS = 9;
const ERRNO = 0;
const MODE = 1;
const UID = 2;
const GID = 3;
const SIZE = 4;
const MTIME_SEC = 5;
const MTIME_NSEC = 6;
const DTYPE = 7;
const FLAGS = 8;
const DT_DIR = 4;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/**
 * Directories whose st_size is at most this are read on the event loop: one block on ext4
 * (~100-200 entries, well under a millisecond), where a thread-pool round trip would cost more
 * than the syscalls; bigger ones are read on the pool so other requests keep being served.
 */
const SYNC_MAX_DIR_BYTES = 4096;

/**
 * One directory's entries in byte order of their names, each with its lstat fields and
 * whether it has user.e2b.* metadata, read by one native call instead of two syscalls per
 * entry through Node. Entries whose EntryInfo needs more than that (symlinks, metadata, an
 * lstat that failed, a size beyond 2^53) are left to {@link entryInfo}.
 */
export class DirListing {
  /** Number of entries. */
  readonly count: number;

  private constructor(private readonly raw: RawListing) {
    this.count = raw.ends.length;
  }

  /**
   * Reads `dir` (raw path bytes); rejects with the errno `code` when it cannot be opened or
   * read. `dirBytes`, the directory's st_size when known (from its parent's listing), lets a
   * small directory be read on the event loop.
   */
  static async read(dir: Buffer, dirBytes = Infinity): Promise<DirListing> {
    const addon = native() as unknown as DirStatAddon;
    return new DirListing(dirBytes <= SYNC_MAX_DIR_BYTES ? addon.readDirStat(dir) : await addon.readDirStatAsync(dir));
  }

  /** st_size of entry `i` (for a directory: how big a read it is), Infinity when unknown. */
  size(i: number): number {
    const at = i * FIELDS;
    return this.raw.fields[at + ERRNO] === 0 ? this.raw.fields[at + SIZE]! : Infinity;
  }

  /** Name bytes of entry `i` (a view into the listing's buffer). */
  name(i: number): Buffer {
    const start = i === 0 ? 0 : this.raw.ends[i - 1]! + 1;
    return this.raw.names.subarray(start, this.raw.ends[i]);
  }

  /** Whether entry `i` is a directory (not a symlink to one), as readdir's Dirent says. */
  isDirectory(i: number): boolean {
    const f = this.raw.fields;
    const at = i * FIELDS;
    if (f[at + ERRNO] !== 0) return f[at + DTYPE] === DT_DIR;
    return (f[at + MODE]! & S_IFMT) === S_IFDIR;
  }

  /**
   * The EntryInfo of entry `i` shown at `shown`, or undefined when it needs the full
   * {@link entryInfo} (symlink, user.e2b.* metadata, failed lstat, inexact size or time).
   */
  entryInfo(i: number, shown: string): EntryInfo | undefined {
    const f = this.raw.fields;
    const at = i * FIELDS;
    const mode = f[at + MODE]!;
    if (f[at + ERRNO] !== 0 || f[at + FLAGS] !== 0 || (mode & S_IFMT) === S_IFLNK) return undefined;
    return plainEntryInfo(shown, {
      mode,
      uid: f[at + UID]!,
      gid: f[at + GID]!,
      size: BigInt(f[at + SIZE]!),
      mtimeSec: BigInt(f[at + MTIME_SEC]!),
      mtimeNsec: f[at + MTIME_NSEC]!,
    });
  }
}
