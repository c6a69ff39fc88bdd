import { native } from "../../native.js";

/** inotify(7) mask bits used by the watchers. */
export const IN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
  UNMOUNT: 0x2000,
  Q_OVERFLOW: 0x4000,
  IGNORED: 0x8000,
  ONLYDIR: 0x1000000,
  DONT_FOLLOW: 0x2000000,
  EXCL_UNLINK: 0x4000000,
  ISDIR: 0x40000000,
} as const;

/** The mask E2B's fsnotify fork asks for: no OPEN, ACCESS or CLOSE_*. */
export const WATCH_MASK = IN.CREATE | IN.MODIFY | IN.DELETE | IN.DELETE_SELF | IN.MOVED_TO | IN.MOVED_FROM | IN.MOVE_SELF | IN.ATTRIB;

/** One record of a kernel batch. `name` is raw bytes (empty for events on the watched inode itself). */
export interface RawInotifyEvent {
  wd: number;
  mask: number;
  cookie: number;
  name: Buffer;
}

const HEADER = 16;
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Splits a kernel batch (struct inotify_event records in host byte order) into events. */
export function parseInotifyBatch(batch: Buffer): RawInotifyEvent[] {
  const out: RawInotifyEvent[] = [];
  let off = 0;
  while (off + HEADER <= batch.length) {
    const wd = LE ? batch.readInt32LE(off) : batch.readInt32BE(off);
    const mask = LE ? batch.readUInt32LE(off + 4) : batch.readUInt32BE(off + 4);
    const cookie = LE ? batch.readUInt32LE(off + 8) : batch.readUInt32BE(off + 8);
    const len = LE ? batch.readUInt32LE(off + 12) : batch.readUInt32BE(off + 12);
    const end = off + HEADER + len;
    if (end > batch.length) break;
    // The name is NUL-padded to an alignment boundary.
    let nameEnd = off + HEADER;
    while (nameEnd < end && batch[nameEnd] !== 0) nameEnd++;
    out.push({ wd, mask, cookie, name: Buffer.from(batch.subarray(off + HEADER, nameEnd)) });
    off = end;
  }
  return out;
}

interface InotifyAddon {
  inotifyOpen(onBatch: (batch: Buffer | null, drained: boolean, errno: number) => void): object;
  inotifyAddWatch(handle: object, path: string | Buffer, mask: number): number;
  inotifyRmWatch(handle: object, wd: number): boolean;
  inotifyClose(handle: object): void;
}

/** Called with each kernel batch; `drained` means the fd had nothing more to read after it. */
export type BatchListener = (events: RawInotifyEvent[], drained: boolean) => void;
/** Called when reading the fd fails (errno as a positive number). */
export type ErrorListener = (errno: number) => void;

/**
 * One inotify instance (one fd) driven by libuv on the main loop, from our
 * N-API addon (native/src/inotify.c). Close it exactly once; the fd is released
 * when libuv lets go of the poll handle.
 */
export class Inotify {
  private handle: object | undefined;
  private readonly addon: InotifyAddon;

  /** Throws an errno-coded Error (EMFILE when fs.inotify.max_user_instances is reached). */
  constructor(onBatch: BatchListener, onError: ErrorListener) {
    this.addon = native() as unknown as InotifyAddon;
    this.handle = this.addon.inotifyOpen((batch, drained, errno) => {
      if (this.handle === undefined) return;
      try {
        if (batch) onBatch(parseInotifyBatch(batch), drained);
        else onError(errno);
      } catch (err) {
        // Nothing above us can catch it: this runs straight from the event loop.
        process.emitWarning(err as Error);
      }
    });
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  /** inotify_add_watch; throws an Error whose `code` is the errno name (ENOSPC, ENOENT, ...). */
  addWatch(path: string | Buffer, mask: number): number {
    if (!this.handle) throw Object.assign(new Error("inotify instance is closed"), { code: "EBADF" });
    return this.addon.inotifyAddWatch(this.handle, path, mask);
  }

  /** inotify_rm_watch; false when the kernel had already dropped the watch. */
  rmWatch(wd: number): boolean {
    if (!this.handle) return false;
    return this.addon.inotifyRmWatch(this.handle, wd);
  }

  close(): void {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = undefined;
    this.addon.inotifyClose(h);
  }
}
