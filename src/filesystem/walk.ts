import { readdirSync, type Dirent } from "node:fs";
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
  /** Whether to descend into a directory (permission enforcement); default yes. */
  canEnter?(abs: Buffer): boolean;
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
  const stack: Level[] = [await readLevel(root, undefined, withStats)];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.count) {
      stack.pop();
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
    if (opts.canEnter && !opts.canEnter(abs)) continue;
    let level: Level;
    try {
      level = await readLevel(abs, rel, withStats, top.listing?.size(index));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENAMETOOLONG: a tree deeper than PATH_MAX (any process can build one) is walked as far as paths reach.
      if (code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG") continue;
      throw err;
    }
    stack.push(level);
  }
}
