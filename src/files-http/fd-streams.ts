import { createReadStream, createWriteStream, fsync, open, read, write, writev, type ReadStream, type WriteStream } from "node:fs";
import type { FileHandle } from "node:fs/promises";

/**
 * fs functions for a stream over a descriptor that its FileHandle owns and closes. A stream
 * made with `fd` and `autoClose: false` still closes the descriptor when it is destroyed (a
 * client gone mid-transfer, a failed pipeline), and the FileHandle then closed the same number
 * again: by then it could be a connection just accepted, whose descriptor vanished under libuv,
 * which aborted the daemon once the number was reused (epoll_ctl EPERM). Here close is a no-op.
 */
const KEEP_OPEN = {
  open,
  read,
  write,
  writev,
  fsync,
  close: (_fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void => cb(null),
};

/** Reads the file of `file` (a FileHandle or a descriptor) from `start` (to `end`, inclusive, if given); never closes the descriptor. */
export function readStreamOn(file: FileHandle | number, opts: { start?: number; end?: number; highWaterMark?: number } = {}): ReadStream {
  const fd = typeof file === "number" ? file : file.fd;
  return createReadStream("", { ...opts, fd, autoClose: false, fs: KEEP_OPEN } as Parameters<typeof createReadStream>[1]);
}

/** Writes into the file of `file` (a FileHandle or a descriptor; at `start`, if given); never closes the descriptor. */
export function writeStreamOn(file: FileHandle | number, opts: { start?: number; highWaterMark?: number } = {}): WriteStream {
  const fd = typeof file === "number" ? file : file.fd;
  return createWriteStream("", { ...opts, fd, autoClose: false, fs: KEEP_OPEN } as Parameters<typeof createWriteStream>[1]);
}
