import { close as fsClose, closeSync, constants, fchmodSync, fchownSync, fstatSync, ftruncateSync, lstatSync, open as fsOpen, openSync, type Stats } from "node:fs";
import { chown, lstat, open, readlink, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { uploadTempPath } from "../filesystem/upload-temp-name.js";
import { getXattr, listXattr, replaceE2bMetadata, setXattr, E2B_XATTR_PREFIX } from "../filesystem/xattr.js";
import { HttpError } from "../http/respond.js";
import type { Logger } from "../log.js";
import { ensureDirs } from "../filesystem/ensure-dirs.js";
import { errnoCode, goErrorText, isNoSpace } from "../filesystem/go-text.js";
import { ClientGoneError, FileTooLargeError } from "./request-body.js";
import { copyBody } from "./copy-body.js";
import { writeStreamOn } from "./fd-streams.js";
import { treeWatchersOpen } from "../filesystem/watch/tree-watcher.js";
// Files of kernel pseudo-filesystems are written in place, never replaced.
import { isAnonymousDevice, isPseudoFs, isPseudoFsDevice } from "./pseudo-fs.js";

/**
 * Whether the target's directory is on a kernel pseudo-filesystem. Those all sit on
 * anonymous devices (major 0), so an existing target on a real device (the usual
 * case) needs no statfs.
 */
async function onPseudoFs(target: string, existing: Stats | undefined): Promise<boolean> {
  if (!existing) return isPseudoFs(posix.dirname(target));
  return isAnonymousDevice(existing.dev) && isPseudoFsDevice(existing.dev, target);
}

/** How one uploaded file is to be written. */
export interface WriteOptions {
  uid: number;
  gid: number;
  /** The user.e2b.* set the file ends up with (replace semantics). */
  metadata: Record<string, string>;
  /** Largest accepted file in bytes; 0 means no limit. */
  maxBytes: number;
  /** The request's Content-Length, quoted in envd's 507 message. */
  contentLength: number | undefined;
  log: Logger;
}

const MAX_SYMLINK_HOPS = 40;

/** Uploads up to this size (by Content-Length) over files up to this size take the synchronous path. */
const SMALL_UPLOAD_BYTES = 64 * 1024;

const openFd = promisify(fsOpen) as (path: string, flags: number, mode: number) => Promise<number>;
const closeFd = promisify(fsClose);

/** The file a path finally names, following symlinks as open(2) would (missing targets included). */
async function followSymlinks(path: string): Promise<string> {
  let p = path;
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    let st: Stats;
    try {
      st = await lstat(p);
    } catch {
      return p;
    }
    if (!st.isSymbolicLink()) return p;
    const target = await readlink(p);
    p = posix.resolve(await realpath(posix.dirname(p)), target);
  }
  const err: NodeJS.ErrnoException = new Error(`ELOOP: too many symbolic links encountered, open '${path}'`);
  err.code = "ELOOP";
  err.syscall = "open";
  err.path = path;
  throw err;
}


/** Copies the old file's extended attributes other than E2B metadata (ACLs, user.*), best effort. */
function copyForeignXattrs(from: string, to: string, log: Logger): void {
  let names: string[];
  try {
    names = listXattr(from);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(E2B_XATTR_PREFIX) || name === "security.capability") continue;
    try {
      setXattr(to, name, getXattr(from, name));
    } catch (err) {
      log.debug({ err, name }, "could not carry an extended attribute over to the replaced file");
    }
  }
}

function writeError(err: unknown, contentLength: number | undefined): Error {
  if (err instanceof ClientGoneError || err instanceof FileTooLargeError || err instanceof HttpError) return err;
  if (isNoSpace(err)) {
    const msg = "not enough disk space available";
    return new HttpError(507, contentLength && contentLength > 0 ? `attempted to write ${contentLength} bytes: ${msg}` : msg);
  }
  return new HttpError(500, `error writing file: ${goErrorText(err)}`);
}

function metadataError(err: unknown): HttpError {
  if (isNoSpace(err)) return new HttpError(507, `not enough space for file metadata: ${goErrorText(err)}`);
  return new HttpError(500, `error writing file metadata: ${goErrorText(err)}`);
}

async function streamInto(file: FileHandle | number, body: Readable, opts: WriteOptions): Promise<void> {
  try {
    // Over the numeric fd, never closed by the stream itself (see fd-streams.ts).
    await copyBody(body, writeStreamOn(file, { highWaterMark: 64 * 1024 }), opts.maxBytes);
  } catch (err) {
    throw writeError(err, opts.contentLength);
  }
}

/** FIFOs and sockets are refused: writing one would wait on whatever process reads it. */
function notRegular(path: string): HttpError {
  return new HttpError(400, `path '${path}' is not a regular file`);
}

/**
 * E2B's overwrite-in-place, kept for targets that cannot be replaced by rename:
 * devices, FIFOs and files of kernel pseudo-filesystems (/proc, /sys, ...).
 */
async function writeInPlace(target: string, body: Readable, opts: WriteOptions): Promise<void> {
  let chowned = false;
  try {
    await chown(target, opts.uid, opts.gid);
    chowned = true;
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw new HttpError(500, `error changing file ownership: ${goErrorText(err)}`);
  }
  let handle: FileHandle;
  try {
    // Non-blocking: a FIFO (even one swapped in since the stat) must not hold a libuv thread
    // until some reader appears; without one this fails with ENXIO.
    handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NONBLOCK | constants.O_NOCTTY, 0o666);
  } catch (err) {
    if (errnoCode(err) === "ENOSPC") throw new HttpError(507, `not enough inodes available: ${goErrorText(err)}`);
    if (errnoCode(err) === "ENXIO") throw notRegular(target);
    throw new HttpError(500, `error opening file: ${goErrorText(err)}`);
  }
  try {
    const st = await handle.stat();
    if (st.isFIFO() || st.isSocket()) throw notRegular(target);
    if (!chowned) await handle.chown(opts.uid, opts.gid).catch((err) => {
      throw new HttpError(500, `error changing file ownership: ${goErrorText(err)}`);
    });
    await streamInto(handle, body, opts);
  } finally {
    await handle.close().catch(() => {});
  }
  try {
    replaceE2bMetadata(target, opts.metadata);
  } catch (err) {
    throw metadataError(err);
  }
}

/**
 * Truncates the new file to its own size: no byte changes, but inotify reports
 * IN_MODIFY under the target's name, so watchers see the WRITE that E2B's in-place
 * upload produces (the e2b SDK's watch tests wait for exactly that event).
 */
function announceWrite(target: string, log: WriteOptions["log"]): void {
  // Synchronous: four metadata calls on the file just renamed take microseconds, where four
  // thread-pool round trips took ~0.2 ms of every small upload (bench: 1000 × 1 KiB writes).
  let fd: number | undefined;
  try {
    fd = openSync(target, constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    ftruncateSync(fd, fstatSync(fd).size);
  } catch (err) {
    log.debug({ err, path: target }, "could not announce upload to watchers");
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes an uploaded file the way envd does (parents created and chowned, the file
 * owned by the user, old mode kept, E2B metadata replaced), but atomically: the body
 * goes to a temporary file beside the target, which is renamed over it only once
 * everything succeeded. On any failure, including a client that disconnects or a full
 * disk, the old file is untouched and the temporary file is removed.
 *
 * Throws HttpError (envd's status and message), FileTooLargeError or ClientGoneError.
 */
export async function writeUploadedFile(path: string, body: Readable, opts: WriteOptions): Promise<void> {
  try {
    await ensureDirs(posix.dirname(path), opts.uid, opts.gid);
  } catch (err) {
    throw new HttpError(500, `error ensuring directories: ${(err as Error).message}`);
  }
  let target = path;
  let existing: Stats | undefined;
  try {
    // A path that is no symlink (the usual case) needs no second stat: its lstat is its stat.
    // Synchronous, like the filesystem RPCs' stats: microseconds on a local filesystem,
    // where a thread-pool round trip cost ~40 µs of every small upload.
    const own = lstatSync(path, { throwIfNoEntry: false });
    if (own?.isSymbolicLink()) {
      target = await followSymlinks(path);
      existing = await stat(target);
    } else existing = own;
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw new HttpError(500, `error getting file info: ${goErrorText(err)}`);
  }
  if (existing?.isDirectory()) throw new HttpError(400, `path is a directory: ${path}`);
  if (existing?.isFIFO() || existing?.isSocket()) throw notRegular(path);
  if ((existing && !existing.isFile()) || (await onPseudoFs(target, existing))) return writeInPlace(target, body, opts);

  const temp = uploadTempPath(target);
  // A small upload over a small (or no) file opens and closes its temporary file synchronously,
  // like the lstat above: microseconds on a local filesystem, where a thread-pool round trip cost
  // ~20-40 µs (bench: 1000 × 1 KiB writes). rename(2) stays on the thread pool: over an existing
  // file on ext4 it allocates and starts writing the new file's blocks (auto_da_alloc), and a
  // synchronous one made small writes there 1.17–1.53× → 1.68–2.08× the minimal server (item 10).
  const small = opts.contentLength !== undefined && opts.contentLength <= SMALL_UPLOAD_BYTES && (!existing || existing.size <= SMALL_UPLOAD_BYTES);
  let fd: number | undefined;
  try {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
    fd = small ? openSync(temp, flags, 0o666) : await openFd(temp, flags, 0o666);
  } catch (err) {
    if (errnoCode(err) === "ENOSPC") throw new HttpError(507, `not enough inodes available: ${goErrorText(err)}`);
    throw new HttpError(500, `error opening file: ${goErrorText(err)}`);
  }
  let renamed = false;
  try {
    try {
      // On the descriptor just opened: synchronous for the same reason as the lstat above.
      fchownSync(fd, opts.uid, opts.gid);
      // The old mode carries over without set-id bits, which envd's chown of the old file clears too.
      if (existing) fchmodSync(fd, existing.mode & 0o1777);
    } catch (err) {
      throw new HttpError(500, `error changing file ownership: ${goErrorText(err)}`);
    }
    if (existing) copyForeignXattrs(target, temp, opts.log);
    await streamInto(fd, body, opts);
    const closing = fd;
    fd = undefined;
    try {
      if (small) closeSync(closing);
      else await closeFd(closing);
    } catch (err) {
      throw writeError(err, opts.contentLength);
    }
    try {
      // A fresh temporary file has no E2B metadata (copyForeignXattrs skips it): nothing to replace.
      if (Object.keys(opts.metadata).length > 0) replaceE2bMetadata(temp, opts.metadata);
    } catch (err) {
      throw metadataError(err);
    }
    try {
      await rename(temp, target);
      renamed = true;
    } catch (err) {
      throw new HttpError(500, `error finalizing upload: ${goErrorText(err)}`);
    }
    // Only this daemon's own watchers need it; without one, four syscalls per upload are saved.
    if (treeWatchersOpen() > 0) announceWrite(target, opts.log);
  } finally {
    // Unlinked before the descriptor closes: once the daemon holds no descriptor, no temp file is left.
    if (!renamed) await unlink(temp).catch(() => {});
    if (fd !== undefined) await closeFd(fd).catch(() => {});
  }
}
