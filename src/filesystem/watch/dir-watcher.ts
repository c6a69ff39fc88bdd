import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventType, FilesystemEventSchema, type EntryInfo, type FilesystemEvent } from "../../gen/filesystem_pb.js";
import type { Logger } from "../../log.js";
import { entryInfo } from "../entry-info.js";
import { OVERFLOW_MESSAGE, TreeWatcher, type TreeEvent } from "./tree-watcher.js";

/** Options for a {@link DirWatcher}. */
export interface DirWatcherOptions {
  root: string;
  recursive: boolean;
  includeEntry: boolean;
  /** Events held before the watcher fails with resource_exhausted. */
  queueMax: number;
  fsRoot?: string;
  canEnter?(abs: Buffer): boolean;
  log: Logger;
}

/** Remove and rename refer to an entry that is gone from the path: they never carry one. */
function carriesEntry(type: EventType): boolean {
  return type === EventType.CREATE || type === EventType.WRITE || type === EventType.CHMOD;
}

/**
 * A watched directory and its bounded event queue, consumed either as a stream
 * (WatchDir) or by polling (GetWatcherEvents). When the queue is full, or the
 * kernel's queue overflowed, the watcher stops, drops what it held and reports
 * resource_exhausted from then on: memory stays bounded and loss is never silent.
 */
export class DirWatcher {
  /** Watchers not yet closed, streaming and polling alike (a Prometheus gauge). */
  static open = 0;
  private readonly tree: TreeWatcher;
  private queue: FilesystemEvent[] = [];
  private head = 0;
  private failure: ConnectError | undefined;
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: DirWatcherOptions) {
    this.tree = new TreeWatcher({
      root: opts.root,
      recursive: opts.recursive,
      emit: (ev) => this.push(ev),
      fail: (err) => this.fail(err),
      canEnter: opts.canEnter,
    });
    DirWatcher.open++;
  }

  /** Starts watching; throws ConnectError (resource_exhausted for kernel limits). */
  start(): void {
    this.tree.start();
  }

  /** Events waiting to be read. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** The terminal error, if the watcher failed. */
  get error(): ConnectError | undefined {
    return this.failure;
  }

  private entry(ev: TreeEvent): EntryInfo | undefined {
    try {
      return entryInfo(ev.abs, { fsRoot: this.opts.fsRoot });
    } catch (err) {
      // Gone again before we looked: a benign race, as in envd.
      if (ConnectError.from(err).code !== Code.NotFound) this.opts.log.warn({ err, path: ev.name }, "failed to get entry info for filesystem event");
      return undefined;
    }
  }

  private push(ev: TreeEvent): boolean {
    if (this.closed || this.failure) return false;
    if (this.pending >= this.opts.queueMax) {
      this.fail(new ConnectError(OVERFLOW_MESSAGE, Code.ResourceExhausted));
      return false;
    }
    const event = create(FilesystemEventSchema, { name: ev.name, type: ev.type });
    if (this.opts.includeEntry && carriesEntry(ev.type)) event.entry = this.entry(ev);
    this.queue.push(event);
    this.notify();
    return true;
  }

  private fail(err: ConnectError): void {
    if (this.failure || this.closed) return;
    this.failure = err;
    this.queue = [];
    this.head = 0;
    this.tree.close();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Takes every queued event (polling); throws the terminal error once failed. */
  drain(): FilesystemEvent[] {
    if (this.failure) throw this.failure;
    const out = this.head === 0 ? this.queue : this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    return out;
  }

  /** Yields events as they come until close(); throws the terminal error. */
  async *events(): AsyncGenerator<FilesystemEvent> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.closed) return;
      if (this.head < this.queue.length) {
        const ev = this.queue[this.head]!;
        this.queue[this.head++] = undefined as never;
        if (this.head === this.queue.length) {
          this.queue = [];
          this.head = 0;
        } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        yield ev;
        continue;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Stops watching and closes the inotify fd; a waiting events() returns. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    DirWatcher.open--;
    this.tree.close();
    this.queue = [];
    this.head = 0;
    this.notify();
  }
}
