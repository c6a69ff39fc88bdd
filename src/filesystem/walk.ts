import { closeSync, constants, readdirSync, type Dirent } from "node:fs";
import { fdOps } from "./fd-ops.js";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { DirListing } from "./dir-listing.js";

/** One entry found by {@link walkTree}. */
export interface WalkEntry {
  /** Path relative to the walk root, raw bytes joined with "/". */
  rel: Buffer;
  /** Absolute path, raw bytes. */
  abs: Buffer;
  /** With `withStats`: the native listing of the entry's directory, the entry at `index`. */
  listing?: DirListing;
  index: number;
}

/** Options for {@link walkTree}. */
export interface WalkOptions {
  /** Entries deeper than this (1 = direct children) are not visited. */
  depth: number;
  /** Whether to descend into a directory (permission enforcement; `rel` as yielded); default yes. */
  canEnter?(abs: Buffer, rel: Buffer): boolean;
  /**
   * Hold each directory open while it is walked and reach its children through that descriptor
   * (/proc/self/fd/N/name), opening subdirectories with O_NOFOLLOW: a directory swapped for a
   * symlink after it was listed is skipped, never followed (the root jail). `abs` paths are then
   * through descriptors, valid only until the walk moves on.
   */
  pinDirs?: boolean;
  /**
   * Read each directory with its entries' lstat fields in one native call (dir-listing.ts), for
   * callers that build an EntryInfo per entry. Big directories are then read on the thread pool.
   */
  withStats?: boolean;
}

const SLASH = Buffer.from("/");
/** Synchronous syscalls in a row before the walk lets other requests run. */
const SLICE = 256;

function join(a: Buffer, b: Buffer): Buffer {
  return a.length === 1 && a[0] === 0x2f ? Buffer.concat([a, b]) : Buffer.concat([a, SLASH, b]);
}

function readSorted(dir: Buffer): Dirent<Buffer>[] {
  const entries = readdirSync(dir, { withFileTypes: true, encoding: "buffer" });
  // Byte order, as Go sorts names: stable and independent of the locale.
  return entries.sort((x, y) => Buffer.compare(x.name, y.name));
}

/** One directory being walked: its entries from readdir, or from a native listing. */
interface Level {
  dir: Buffer;
  rel: Buffer | undefined;
  count: number;
  name(i: number): Buffer;
  isDirectory(i: number): boolean;
  listing?: DirListing;
  i: number;
  /** With pinDirs: the directory's descriptor, closed when the walk leaves it. */
  fd?: number;
}

function direntLevel(dir: Buffer, rel: Buffer | undefined, entries: Dirent<Buffer>[]): Level {
  return { dir, rel, count: entries.length, name: (i) => entries[i]!.name, isDirectory: (i) => entries[i]!.isDirectory(), i: 0 };
}

async function readLevel(dir: Buffer, rel: Buffer | undefined, withStats: boolean, dirBytes?: number): Promise<Level> {
  if (withStats) {
    try {
      const listing = await DirListing.read(dir, dirBytes);
      return { dir, rel, count: listing.count, name: (i) => listing.name(i), isDirectory: (i) => listing.isDirectory(i), listing, i: 0 };
    } catch {
      // Whatever failed, readdir fails the same way with Node's own error (or, after a race, works).
    }
  }
  return direntLevel(dir, rel, readSorted(dir));
}

/**
 * Go's filepath.WalkDir order: lexical, depth-first pre-order (a directory before
 * its children), symlinks not followed, the root itself not yielded. A
 * subdirectory that vanished or cannot be entered is skipped; errors reading the
 * root are thrown. Names are bytes, so non-UTF-8 names are walked too.
 */
export async function* walkTree(root: Buffer, opts: WalkOptions): AsyncGenerator<WalkEntry> {
  const withStats = opts.withStats === true;
  let budget = SLICE;
  const stack: Level[] = [];
  try {
    stack.push(opts.pinDirs ? await pinnedLevel(-100, root, undefined, withStats) : await readLevel(root, undefined, withStats));
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.i >= top.count) {
        stack.pop();
        if (top.fd !== undefined) closeSync(top.fd);
        continue;
      }
      const index = top.i++;
      const name = top.name(index);
      const rel = top.rel ? Buffer.concat([top.rel, SLASH, name]) : name;
      const abs = join(top.dir, name);
      yield { rel, abs, listing: top.listing, index };
      if (--budget <= 0) {
        budget = SLICE;
        await yieldToLoop();
      }
      if (!top.isDirectory(index) || stack.length >= opts.depth) continue;
      if (opts.canEnter && !opts.canEnter(abs, rel)) continue;
      let level: Level;
      try {
        level = top.fd !== undefined ? await pinnedLevel(top.fd, name, rel, withStats, top.listing?.size(index)) : await readLevel(abs, rel, withStats, top.listing?.size(index));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // ENAMETOOLONG: a tree deeper than PATH_MAX (any process can build one) is walked as far as paths reach.
        // ELOOP: with pinDirs, a directory swapped for a symlink since it was listed.
        if (code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG" || code === "ELOOP") continue;
        throw err;
      }
      stack.push(level);
    }
  } finally {
    for (const level of stack) if (level.fd !== undefined) closeSync(level.fd);
  }
}

/** A level of a pinDirs walk: `name` opened in `parent` (never through a symlink below the root) and read through its descriptor. */
async function pinnedLevel(parent: number, name: Buffer, rel: Buffer | undefined, withStats: boolean, dirBytes?: number): Promise<Level> {
  const flags = constants.O_RDONLY | constants.O_DIRECTORY | (rel === undefined ? 0 : constants.O_NOFOLLOW);
  const fd = fdOps().openAt(parent, name, flags, 0);
  try {
    const level = await readLevel(Buffer.from(`/proc/self/fd/${fd}`), rel, withStats, dirBytes);
    level.fd = fd;
    return level;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
