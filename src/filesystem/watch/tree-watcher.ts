import { closeSync, openSync, readdirSync, type Dirent } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventType } from "../../gen/filesystem_pb.js";
import { isReplaceTempName, isUploadTempName } from "../upload-temp-name.js";
import { IN, Inotify, WATCH_MASK, type RawInotifyEvent } from "./inotify.js";

/** One filesystem event as envd reports it, before entry info is attached. */
export interface TreeEvent {
  /** Path relative to the watched directory ("." for the directory itself), lossy UTF-8. */
  name: string;
  type: EventType;
  /** Absolute path as raw bytes, for stat-ing the entry. */
  abs: Buffer;
}

/** Options for a {@link TreeWatcher}. */
export interface TreeWatcherOptions {
  /** Absolute, existing directory (already resolved and checked by the caller). */
  root: string;
  recursive: boolean;
  /** Receives events in order; returns false to stop (the sink overflowed). */
  emit(event: TreeEvent): boolean;
  /** A terminal error: the watcher is closed when this is called. */
  fail(err: ConnectError): void;
  /** Whether a subdirectory may be watched (permission enforcement); default yes. */
  canEnter?(abs: Buffer): boolean;
}

/** The overflow error both for our bounded queue and for the kernel's IN_Q_OVERFLOW. */
export const OVERFLOW_MESSAGE = "watcher event queue overflowed";

/** Maps an inotify_add_watch/inotify_init1 failure to the error a client can act on. */
export function watchLimitError(err: unknown, path: string): ConnectError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ENOSPC") {
    return new ConnectError(
      `cannot watch '${path}': the inotify watch limit is reached (raise fs.inotify.max_user_watches)`,
      Code.ResourceExhausted,
    );
  }
  // inotify_init1 says EMFILE both for the per-user instance limit and for a full descriptor table.
  if (code === "EMFILE" && descriptorTableFull()) {
    return new ConnectError(`cannot watch '${path}': too many open files`, Code.ResourceExhausted);
  }
  if (code === "EMFILE") {
    return new ConnectError(`cannot watch '${path}': too many inotify instances (raise fs.inotify.max_user_instances)`, Code.ResourceExhausted);
  }
  if (code === "ENFILE") return new ConnectError(`cannot watch '${path}': too many open files in the system`, Code.ResourceExhausted);
  if (code === "ENOMEM") return new ConnectError(`cannot watch '${path}': out of kernel memory for inotify`, Code.ResourceExhausted);
  return new ConnectError(`error adding path ${path} to watcher: ${(err as Error)?.message ?? String(err)}`, Code.Internal);
}

function descriptorTableFull(): boolean {
  try {
    closeSync(openSync("/dev/null", "r"));
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EMFILE";
  }
}

const SLASH = "/";
const SUBDIR_MASK = WATCH_MASK | IN.ONLYDIR | IN.DONT_FOLLOW;

/**
 * A directory watch with E2B's fsnotify-fork semantics (docs/protocol.md, "Watch events") on one
 * inotify instance: inotify masks become CREATE/WRITE/REMOVE/RENAME/CHMOD, one
 * event per op, names relative to the root. In recursive mode new
 * subdirectories are watched as they appear, and a directory created in the tree
 * gets synthetic CREATEs for what it already holds (`mkdir -p a/b/c`).
 *
 * Paths inside are kept as latin1 strings, a byte-exact encoding usable as Map
 * keys, so names that are not UTF-8 still work; they become lossy only on output.
 */
let openTreeWatchers = 0;

/** How many watchers are open in this daemon right now (WatchDir streams and CreateWatcher watchers). */
export function treeWatchersOpen(): number {
  return openTreeWatchers;
}

export class TreeWatcher {
  private readonly inotify: Inotify;
  private readonly rootBytes: Buffer;
  /** wd → path of the watched directory relative to the root ("" for the root). */
  private readonly dirOf = new Map<number, string>();
  private readonly wdOf = new Map<string, number>();
  /** MOVED_FROM cookies of directories, waiting for their MOVED_TO. */
  private readonly pendingMoves = new Map<number, string>();
  /** MOVED_FROM cookies of upload temporaries that replace an existing file (a few at most). */
  private readonly replacing = new Set<number>();
  /**
   * Paths reported by a synthetic CREATE, with the batch number that made them.
   * The kernel may also have queued a real IN_CREATE for them (created between the
   * watch and the walk); that duplicate is dropped. Every such event was queued
   * before the walk ended, so it is read by the first drained batch after it.
   */
  private readonly synthetic = new Map<string, number>();
  private batchNo = 0;
  private stopped = false;
  private closed = false;

  constructor(private readonly opts: TreeWatcherOptions) {
    this.rootBytes = Buffer.from(opts.root);
    try {
      this.inotify = new Inotify(
        (events, drained) => this.onBatch(events, drained),
        (errno) => this.stop(new ConnectError(`watcher error: read failed (errno ${errno})`, Code.Internal)),
      );
    } catch (err) {
      throw watchLimitError(err, opts.root);
    }
    openTreeWatchers++;
  }

  /** Adds the root watch (and, recursively, every subdirectory). Throws ConnectError. */
  start(): void {
    try {
      this.watchDir("", WATCH_MASK);
      if (this.opts.recursive) this.walk("", false);
    } catch (err) {
      this.close();
      throw err instanceof ConnectError ? err : watchLimitError(err, this.opts.root);
    }
  }

  /** Releases the inotify fd; no events or errors are delivered afterwards. */
  close(): void {
    if (!this.closed) openTreeWatchers--;
    this.closed = true;
    this.stopped = true;
    this.inotify.close();
    this.dirOf.clear();
    this.wdOf.clear();
    this.synthetic.clear();
    this.pendingMoves.clear();
  }

  private stop(err: ConnectError): void {
    if (this.stopped) return;
    this.close();
    this.opts.fail(err);
  }

  private abs(rel: string): Buffer {
    if (rel === "") return this.rootBytes;
    const relBytes = Buffer.from(rel, "latin1");
    return this.opts.root === SLASH ? Buffer.concat([this.rootBytes, relBytes]) : Buffer.concat([this.rootBytes, Buffer.from(SLASH), relBytes]);
  }

  /** Adds a watch; returns false when the directory is gone or may not be entered. */
  private watchDir(rel: string, mask: number): boolean {
    const abs = this.abs(rel);
    if (rel !== "" && this.opts.canEnter && !this.opts.canEnter(abs)) return false;
    let wd: number;
    try {
      wd = this.inotify.addWatch(abs, mask);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Vanished, replaced by a file or symlink, or unreadable: skipped, as the fork does. Also
      // skipped: directories beyond PATH_MAX, which any process can build to break the watch otherwise.
      if (rel !== "" && (code === "ENOENT" || code === "ENOTDIR" || code === "EACCES" || code === "ELOOP" || code === "ENAMETOOLONG")) return false;
      throw watchLimitError(err, this.abs(rel).toString());
    }
    const old = this.dirOf.get(wd);
    if (old !== undefined) this.wdOf.delete(old);
    this.dirOf.set(wd, rel);
    this.wdOf.set(rel, wd);
    return true;
  }

  /**
   * Watches every directory below `rel` in lexical pre-order; with `announce`,
   * emits a synthetic CREATE for each entry. Returns false when the sink overflowed.
   */
  private walk(rel: string, announce: boolean): boolean {
    let entries: Dirent<Buffer>[];
    try {
      entries = readdirSync(this.abs(rel), { withFileTypes: true, encoding: "buffer" });
    } catch {
      return true;
    }
    entries.sort((a, b) => Buffer.compare(a.name, b.name));
    for (const entry of entries) {
      if (this.stopped) return false;
      const childRel = (rel === "" ? "" : rel + SLASH) + entry.name.toString("latin1");
      if (announce) {
        this.synthetic.set(childRel, this.batchNo);
        if (!this.emit(EventType.CREATE, childRel)) return false;
      }
      // Dirent types come from lstat semantics: symlinked directories are not followed.
      if (entry.isDirectory() && this.watchDir(childRel, SUBDIR_MASK) && !this.walk(childRel, announce)) return false;
    }
    return true;
  }

  private emit(type: EventType, rel: string): boolean {
    if (this.stopped) return false;
    const name = rel === "" ? "." : Buffer.from(rel, "latin1").toString("utf8");
    const ok = this.opts.emit({ name, type, abs: this.abs(rel) });
    if (!ok) this.stopped = true;
    return ok;
  }

  /** Re-keys a watched directory subtree after a rename inside the tree. */
  private renameSubtree(from: string, to: string): void {
    const prefix = from + SLASH;
    for (const [wd, rel] of [...this.dirOf]) {
      if (rel !== from && !rel.startsWith(prefix)) continue;
      const moved = to + rel.slice(from.length);
      this.wdOf.delete(rel);
      this.dirOf.set(wd, moved);
      this.wdOf.set(moved, wd);
    }
  }

  /** Stops watching a subtree that left the watched tree. */
  private forgetSubtree(rel: string): void {
    const prefix = rel + SLASH;
    for (const [wd, dir] of [...this.dirOf]) {
      if (dir !== rel && !dir.startsWith(prefix)) continue;
      this.inotify.rmWatch(wd);
      this.dirOf.delete(wd);
      this.wdOf.delete(dir);
    }
  }

  private onBatch(events: RawInotifyEvent[], drained: boolean): void {
    if (this.stopped) return;
    this.batchNo++;
    for (const ev of events) {
      if (this.stopped) return;
      if (ev.mask & IN.Q_OVERFLOW) {
        this.stop(new ConnectError(`${OVERFLOW_MESSAGE} (kernel queue, fs.inotify.max_queued_events)`, Code.ResourceExhausted));
        return;
      }
      try {
        this.handle(ev);
      } catch (err) {
        this.stop(err instanceof ConnectError ? err : new ConnectError(`watcher error: ${(err as Error)?.message ?? String(err)}`, Code.Internal));
        return;
      }
    }
    if (this.stopped || !drained) return;
    // Directories moved out of the tree: their MOVED_TO never came.
    for (const rel of this.pendingMoves.values()) this.forgetSubtree(rel);
    this.pendingMoves.clear();
    for (const [rel, n] of this.synthetic) if (n < this.batchNo) this.synthetic.delete(rel);
  }

  private handle(ev: RawInotifyEvent): void {
    const dir = this.dirOf.get(ev.wd);
    if (dir === undefined) return;
    if (ev.mask & IN.IGNORED) {
      this.dirOf.delete(ev.wd);
      if (this.wdOf.get(dir) === ev.wd) this.wdOf.delete(dir);
      return;
    }
    if (ev.name.length === 0) {
      // Events on a watched directory itself. Below the root the parent's watch
      // reports the same change with a name, so only the root's count.
      if (dir !== "") return;
      if (ev.mask & IN.ATTRIB) this.emit(EventType.CHMOD, "");
      if (ev.mask & IN.MOVE_SELF) this.emit(EventType.RENAME, "");
      if (ev.mask & IN.DELETE_SELF) this.emit(EventType.REMOVE, "");
      return;
    }
    const isDir = (ev.mask & IN.ISDIR) !== 0;
    if (!isDir && isUploadTempName(ev.name.toString("latin1"))) {
      // Its rename over an existing file is E2B's in-place rewrite: no CREATE for the target.
      if (ev.mask & IN.MOVED_FROM && ev.cookie && isReplaceTempName(ev.name.toString("latin1"))) {
        if (this.replacing.size >= 64) this.replacing.clear();
        this.replacing.add(ev.cookie);
      }
      return;
    }
    const rel = (dir === "" ? "" : dir + SLASH) + ev.name.toString("latin1");
    let create = (ev.mask & (IN.CREATE | IN.MOVED_TO)) !== 0;
    if (create && ev.mask & IN.MOVED_TO && ev.cookie && this.replacing.delete(ev.cookie)) create = false;
    if (create && this.synthetic.has(rel)) {
      // Already announced (and walked) by a synthetic CREATE.
      this.synthetic.delete(rel);
      if (ev.cookie) this.pendingMoves.delete(ev.cookie);
      create = false;
    } else {
      this.synthetic.delete(rel);
    }
    if (create && !this.emit(EventType.CREATE, rel)) return;
    if (this.opts.recursive && isDir) {
      if (create && ev.mask & IN.CREATE) {
        if (this.watchDir(rel, SUBDIR_MASK) && !this.walk(rel, true)) return;
      } else if (create) {
        const from = ev.cookie ? this.pendingMoves.get(ev.cookie) : undefined;
        if (from !== undefined && this.wdOf.has(from)) {
          this.pendingMoves.delete(ev.cookie);
          this.renameSubtree(from, rel);
        } else if (this.watchDir(rel, SUBDIR_MASK)) {
          // Moved in from outside: watch it, but it was not created, so no synthetic events.
          if (!this.walk(rel, false)) return;
        }
      }
      if (ev.mask & IN.MOVED_FROM && ev.cookie) this.pendingMoves.set(ev.cookie, rel);
    }
    if (ev.mask & IN.MOVED_FROM && !this.emit(EventType.RENAME, rel)) return;
    if (ev.mask & IN.ATTRIB && !this.emit(EventType.CHMOD, rel)) return;
    if (ev.mask & IN.MODIFY && !this.emit(EventType.WRITE, rel)) return;
    if (ev.mask & IN.DELETE) this.emit(EventType.REMOVE, rel);
  }
}
