import { readdirSync, type Dirent } from "node:fs";
import { setImmediate as yieldToLoop } from "node:timers/promises";

/** One entry found by {@link walkTree}. */
export interface WalkEntry {
  /** Path relative to the walk root, raw bytes joined with "/". */
  rel: Buffer;
  /** Absolute path, raw bytes. */
  abs: Buffer;
}

/** Options for {@link walkTree}. */
export interface WalkOptions {
  /** Entries deeper than this (1 = direct children) are not visited. */
  depth: number;
  /** Whether to descend into a directory (permission enforcement); default yes. */
  canEnter?(abs: Buffer): boolean;
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

/**
 * Go's filepath.WalkDir order: lexical, depth-first pre-order (a directory before
 * its children), symlinks not followed, the root itself not yielded. A
 * subdirectory that vanished or cannot be entered is skipped; errors reading the
 * root are thrown. Names are bytes, so non-UTF-8 names are walked too.
 */
export async function* walkTree(root: Buffer, opts: WalkOptions): AsyncGenerator<WalkEntry> {
  let budget = SLICE;
  const stack: { dir: Buffer; rel: Buffer | undefined; entries: Dirent<Buffer>[]; i: number }[] = [
    { dir: root, rel: undefined, entries: readSorted(root), i: 0 },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.entries.length) {
      stack.pop();
      continue;
    }
    const entry = top.entries[top.i++]!;
    const rel = top.rel ? Buffer.concat([top.rel, SLASH, entry.name]) : entry.name;
    const abs = join(top.dir, entry.name);
    yield { rel, abs };
    if (--budget <= 0) {
      budget = SLICE;
      await yieldToLoop();
    }
    if (!entry.isDirectory() || stack.length >= opts.depth) continue;
    if (opts.canEnter && !opts.canEnter(abs)) continue;
    let entries: Dirent<Buffer>[];
    try {
      entries = readSorted(abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENAMETOOLONG: a tree deeper than PATH_MAX (any process can build one) is walked as far as paths reach.
      if (code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG") continue;
      throw err;
    }
    stack.push({ dir: abs, rel, entries, i: 0 });
  }
}

