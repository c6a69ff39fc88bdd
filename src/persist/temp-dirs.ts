import { closeSync, constants, openSync, readlinkSync, realpathSync, writeSync } from "node:fs";
import type { Logger } from "../log.js";
import type { StateDir } from "./state-dir.js";

/**
 * Uploads, copies and composes write beside their target under a temporary name and rename
 * it into place. A daemon killed in between (kill -9, OOM, a crash) leaves that file behind,
 * and nothing else would ever remove it. So every directory that gets one is recorded in the
 * state directory before the file is created, and the next daemon removes the leftovers there.
 */

/** The journal of directories: one hex-encoded path per line, appended to (no fsync: it must survive the daemon, not the machine). */
const JOURNAL = "temp-dirs";
/** Directories recorded per daemon run; beyond, temporaries there are not cleaned at the next start (a warning says so). */
export const MAX_TEMP_DIRS = 4096;

class TempDirJournal {
  /** Keys (latin1 of the path bytes) of the directories seen this run. */
  private readonly seen = new Set<string>();
  /** Canonical paths recorded this run, in order. */
  readonly recorded: Buffer[] = [];
  private fd: number | undefined;
  private log: Logger | undefined;
  private full = false;

  /** Starts appending to the journal, first what was recorded from index `from` on and is not in it yet. */
  attach(fd: number, log: Logger, from = 0): void {
    this.fd = fd;
    this.log = log;
    for (const dir of this.recorded.slice(from)) this.append(dir);
  }

  detach(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  record(dir: number | string | Buffer): void {
    let canonical: Buffer | undefined;
    let key: string;
    if (typeof dir === "number") {
      // A directory descriptor: its path now, as the kernel knows it (already canonical).
      try {
        canonical = readlinkSync(`/proc/self/fd/${dir}`, { encoding: "buffer" });
      } catch {
        return;
      }
      key = canonical.toString("latin1");
    } else key = typeof dir === "string" ? dir : dir.toString("latin1");
    if (this.seen.has(key)) return;
    if (this.seen.size >= MAX_TEMP_DIRS) {
      if (!this.full) this.log?.warn({ max: MAX_TEMP_DIRS }, "too many directories hold temporary files to record them all; leftovers in the others are not cleaned at the next start");
      this.full = true;
      return;
    }
    this.seen.add(key);
    if (!canonical) {
      try {
        // The path the sweep will check it against.
        canonical = realpathSync.native(dir as string | Buffer, { encoding: "buffer" });
      } catch {
        canonical = typeof dir === "string" ? Buffer.from(dir) : (dir as Buffer);
      }
    }
    this.recorded.push(canonical);
    this.append(canonical);
  }

  private append(dir: Buffer): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, dir.toString("hex") + "\n");
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, "cannot record a directory of temporary files");
    }
  }
}

const journal = new TempDirJournal();

/**
 * Notes that a temporary file is about to be created in dir (a directory descriptor or a path).
 * Called before the file exists,
 * so a daemon killed at any point after has the directory on record.
 */
export function recordTempDir(dir: number | string | Buffer): void {
  journal.record(dir);
}

function parseJournal(raw: Buffer | undefined): Buffer[] {
  if (!raw) return [];
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (const line of raw.toString("latin1").split("\n")) {
    // A line cut short by a kill is not valid hex of a path: skipped.
    if (!/^(?:[0-9a-f]{2})+$/.test(line) || seen.has(line)) continue;
    seen.add(line);
    out.push(Buffer.from(line, "hex"));
    if (out.length >= MAX_TEMP_DIRS * 2) break;
  }
  return out;
}

/**
 * At start, before the daemon serves: takes the directories the previous daemons recorded and
 * starts a journal that keeps them (a daemon killed during the sweep loses none), so every
 * directory this daemon records is on disk before its temporary file exists.
 */
export function openTempJournal(state: StateDir, log: Logger): Buffer[] {
  let previous: Buffer[] = [];
  try {
    previous = parseJournal(state.read(JOURNAL));
  } catch (err) {
    log.warn({ err: (err as Error).message }, "cannot read the directories of temporary files of the previous daemon");
  }
  state.writeSync(JOURNAL, previous.map((d) => d.toString("hex") + "\n").join(""));
  const fd = openSync(state.file(JOURNAL), constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
  journal.attach(fd, log);
  return previous;
}

/**
 * Rewrites the journal with this run's directories only, once the previous ones were swept.
 * Synchronous: a directory recorded in between could otherwise miss both files.
 */
export function compactTempJournal(state: StateDir, log: Logger): void {
  journal.detach();
  try {
    state.writeSync(JOURNAL, journal.recorded.map((d) => d.toString("hex") + "\n").join(""));
  } catch (err) {
    // The old journal stays: it holds this run's directories too, and more than needed is harmless.
    log.warn({ err: (err as Error).message }, "cannot compact the journal of directories of temporary files");
  }
  journal.attach(openSync(state.file(JOURNAL), constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW), log, journal.recorded.length);
}

/** The directories this daemon wrote temporaries into. */
export function tempDirsOfThisRun(): Buffer[] {
  return [...journal.recorded];
}

