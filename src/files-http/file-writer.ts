import { close as fsClose, closeSync, constants, fchownSync, fchmodSync, fstatSync, ftruncateSync, type Stats } from "node:fs";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { ConnectError } from "@connectrpc/connect";
import type { DaemonContext } from "../daemon-context.js";
import { fdOps, sameFile, statAt, type FileStat } from "../filesystem/fd-ops.js";
import { openParent, type ParentEntry } from "../filesystem/resolve.js";
import { uploadTempPath } from "../filesystem/upload-temp-name.js";
import { recordTempDir } from "../persist/temp-dirs.js";
import { copyForeignXattrsFd, readE2bMetadataFd, replaceE2bMetadataFd } from "../filesystem/xattr.js";
import { HttpError } from "../http/respond.js";
import type { Logger } from "../log.js";
import { ensureParentDirs } from "../filesystem/ensure-dirs.js";
import type { FileAccess } from "../filesystem/access.js";
import { errnoCode, goErrorText, isNoSpace } from "../filesystem/go-text.js";
import { ClientGoneError, FileTooLargeError } from "./request-body.js";
import { copyBody } from "./copy-body.js";
import { writeStreamOn } from "./fd-streams.js";
import { treeWatchersOpen } from "../filesystem/watch/tree-watcher.js";
import { pathHttpError } from "./request-context.js";
// Files of kernel pseudo-filesystems are written in place, never replaced.
import { isAnonymousDevice, isPseudoFs, isPseudoFsDevice } from "./pseudo-fs.js";

/** The directory a descriptor holds, as a path the kernel maps to exactly that directory. */
function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/**
 * Whether the target's directory is on a kernel pseudo-filesystem. Those all sit on
 * anonymous devices (major 0), so an existing target on a real device (the usual
 * case) needs no statfs.
 */
async function onPseudoFs(parent: ParentEntry, existing: FileStat | undefined): Promise<boolean> {
  if (!existing) return isPseudoFs(fdPath(parent.dir));
  return isAnonymousDevice(existing.dev) && isPseudoFsDevice(existing.dev, fdPath(parent.dir));
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
  /** --enforce-file-permissions: a file written in place keeps its owner, as the kernel's write would. */
  keepOwnerInPlace: boolean;
  /**
   * --enforce-file-permissions: asked about the directory actually written into (its descriptor)
   * and the final name in it; returns the refusal text (403), or undefined when allowed.
   */
  checkTarget?: (dirfd: number, name: Buffer, exists: boolean) => Promise<string | undefined>;
  /** --enforce-file-permissions: missing parent directories are created as this user. */
  access?: FileAccess;
  /** The extension's `mode=`: the file's permission bits, set on the temporary file before it takes its name. */
  mode?: number;
}

/** Uploads up to this size (by Content-Length) over files up to this size take the synchronous path. */
const SMALL_UPLOAD_BYTES = 64 * 1024;

const closeFd = promisify(fsClose);

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

async function streamInto(file: number, body: Readable, opts: WriteOptions): Promise<void> {
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
 * The entry is opened first (never through a symlink swapped in since it was
 * resolved) and only the descriptor that opened is chowned: an open that fails
 * changes no owner. With keepOwnerInPlace (permission enforcement) the owner is
 * never changed, so a world-writable device node cannot be handed to a user.
 */
async function writeInPlace(parent: ParentEntry, path: string, body: Readable, opts: WriteOptions): Promise<Record<string, string>> {
  let fd: number;
  try {
    // Non-blocking: a FIFO (even one swapped in since the stat) must not hold a libuv thread
    // until some reader appears; without one this fails with ENXIO.
    fd = await fdOps().openAtAsync(parent.dir, parent.name, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_NOFOLLOW, 0o666);
  } catch (err) {
    if (errnoCode(err) === "ENOSPC") throw new HttpError(507, `not enough inodes available: ${goErrorText(err)}`);
    if (errnoCode(err) === "ENXIO") throw notRegular(path);
    throw new HttpError(500, `error opening file: ${goErrorText(withOp(err, "open", path))}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isFIFO() || st.isSocket()) throw notRegular(path);
    if (opts.mode !== undefined) throw new HttpError(400, `path '${path}' is not a regular file: mode applies to regular files only`);
    if (!opts.keepOwnerInPlace) {
      try {
        fchownSync(fd, opts.uid, opts.gid);
      } catch (err) {
        throw new HttpError(500, `error changing file ownership: ${goErrorText(withOp(err, "chown", path))}`);
      }
    }
    await streamInto(fd, body, opts);
    try {
      replaceE2bMetadataFd(fd, opts.metadata);
    } catch (err) {
      throw metadataError(err);
    }
    return readE2bMetadataFd(fd);
  } finally {
    await closeFd(fd).catch(() => {});
  }
}

function withOp(err: unknown, syscall: string, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === "string") {
    e.syscall = syscall;
    e.path = path;
  }
  return err;
}

/**
 * What E2B's in-place upload shows a watcher after the file's CREATE (the rename into place):
 * CHMOD (its fchown) and WRITE. The same fchown and a truncation to its own size on the renamed
 * file's descriptor change no byte and no owner, but inotify reports IN_ATTRIB and IN_MODIFY under
 * the target's name (the e2b SDK's watch tests count CREATE, CHMOD, WRITE).
 */
function announceWrite(fd: number, opts: WriteOptions): void {
  // Synchronous: metadata calls on an open descriptor take microseconds, where thread-pool round
  // trips took ~0.2 ms of every small upload (bench: 1000 × 1 KiB writes).
  try {
    fchownSync(fd, opts.uid, opts.gid);
    ftruncateSync(fd, fstatSync(fd).size);
  } catch (err) {
    opts.log.debug({ err }, "could not announce upload to watchers");
  }
}

/** The existing regular file being replaced, opened to read its mode and attributes (not for I/O). */
function openReplaced(parent: ParentEntry, existing: FileStat): { fd: number; st: Stats } | undefined {
  let fd: number;
  try {
    fd = fdOps().openAt(parent.dir, parent.name, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY, 0);
  } catch {
    return undefined;
  }
  const st = fstatSync(fd);
  if (!st.isFile() || !sameFile(st, existing)) {
    closeSync(fd);
    return undefined;
  }
  return { fd, st };
}

/**
 * Writes an uploaded file the way envd does (parents created and chowned, the file
 * owned by the user, old mode kept, E2B metadata replaced), but atomically: the body
 * goes to a temporary file beside the target, which is renamed over it only once
 * everything succeeded. On any failure, including a client that disconnects or a full
 * disk, the old file is untouched and the temporary file is removed.
 *
 * Every step acts on descriptors: the target's directory is resolved once (beneath the
 * root jail when one is set; missing directories created owned by the user from birth),
 * the temporary file is created in it with O_EXCL, chowned, given the old mode and
 * attributes and written through its own descriptor, and renamed within that directory.
 * Nothing is chowned, chmodded or given attributes by a name looked up again.
 *
 * Returns the E2B metadata the file ends up with. Throws HttpError (envd's status and
 * message), FileTooLargeError or ClientGoneError.
 */
export async function writeUploadedFile(ctx: DaemonContext, path: string, body: Readable, opts: WriteOptions): Promise<Record<string, string>> {
  let parent: ParentEntry;
  try {
    parent = ensureParentDirs(ctx, path, opts.uid, opts.gid, opts.access);
  } catch (err) {
    if (err instanceof ConnectError) throw pathHttpError(err, "error resolving path: ");
    throw new HttpError(500, `error ensuring directories: ${(err as Error).message}`);
  }
  try {
    let existing: FileStat | undefined;
    try {
      // Synchronous, like the filesystem RPCs' stats: microseconds on a local filesystem,
      // where a thread-pool round trip cost ~40 µs of every small upload.
      existing = statAt(parent.dir, parent.name);
    } catch (err) {
      throw new HttpError(500, `error getting file info: ${goErrorText(withOp(err, "stat", path))}`);
    }
    if (existing?.isSymbolicLink()) {
      // envd writes through a symlink: the file it finally names is the one replaced.
      let followed: ParentEntry;
      try {
        followed = openParent(ctx, path, { follow: true });
      } catch (err) {
        if (err instanceof ConnectError) throw pathHttpError(err, "error resolving path: ");
        throw new HttpError(500, `error opening file: ${goErrorText(withOp(err, "open", path))}`);
      }
      parent.close();
      parent = followed;
      try {
        existing = statAt(parent.dir, parent.name);
      } catch (err) {
        throw new HttpError(500, `error getting file info: ${goErrorText(withOp(err, "stat", path))}`);
      }
    }
    if (existing?.isDirectory()) throw new HttpError(400, `path is a directory: ${path}`);
    if (existing?.isFIFO() || existing?.isSocket()) throw notRegular(path);
    const refused = await opts.checkTarget?.(parent.dir, parent.name, existing !== undefined);
    if (refused) throw new HttpError(403, refused);
    if ((existing && !existing.isFile()) || (await onPseudoFs(parent, existing))) return await writeInPlace(parent, path, body, opts);
    return await replaceAtomically(parent, path, existing, body, opts);
  } finally {
    parent.close();
  }
}

async function replaceAtomically(parent: ParentEntry, path: string, existing: FileStat | undefined, body: Readable, opts: WriteOptions): Promise<Record<string, string>> {
  const { dir, name } = parent;
  const temp = uploadTempPath(name.toString("latin1"), existing !== undefined);
  const tempName = Buffer.from(temp, "latin1");
  // On record before the file exists: a daemon killed before the rename has it removed at the next start.
  recordTempDir(dir);
  // A small upload over a small (or no) file opens and closes its temporary file synchronously,
  // like the stat above: microseconds on a local filesystem, where a thread-pool round trip cost
  // ~20-40 µs (bench: 1000 × 1 KiB writes). rename(2) stays on the thread pool: over an existing
  // file on ext4 it allocates and starts writing the new file's blocks (auto_da_alloc), and a
  // synchronous one made small writes there 1.17–1.53× → 1.68–2.08× the minimal server (item 10).
  const small = opts.contentLength !== undefined && opts.contentLength <= SMALL_UPLOAD_BYTES && (!existing || existing.size <= SMALL_UPLOAD_BYTES);
  let fd: number | undefined;
  try {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    fd = small ? fdOps().openAt(dir, tempName, flags, 0o666) : await fdOps().openAtAsync(dir, tempName, flags, 0o666);
  } catch (err) {
    if (errnoCode(err) === "ENOSPC") throw new HttpError(507, `not enough inodes available: ${goErrorText(err)}`);
    throw new HttpError(500, `error opening file: ${goErrorText(withOp(err, "open", path))}`);
  }
  let renamed = false;
  try {
    const old = existing ? openReplaced(parent, existing) : undefined;
    try {
      try {
        // Owned by the user before it has its final name; on the descriptor just opened.
        fchownSync(fd, opts.uid, opts.gid);
        // The old mode carries over without set-id bits, which envd's chown of the old file clears too.
        if (opts.mode !== undefined) fchmodSync(fd, opts.mode);
        else if (old) fchmodSync(fd, old.st.mode & 0o1777);
      } catch (err) {
        throw new HttpError(500, `error changing file ownership: ${goErrorText(err)}`);
      }
      if (old) copyForeignXattrsFd(old.fd, fd, (attr, err) => opts.log.debug({ err, name: attr }, "could not carry an extended attribute over to the replaced file"));
    } finally {
      if (old) closeSync(old.fd);
    }
    await streamInto(fd, body, opts);
    let metadata: Record<string, string> = {};
    try {
      // A fresh temporary file has no E2B metadata (copyForeignXattrsFd skips it): nothing to replace.
      if (Object.keys(opts.metadata).length > 0) {
        replaceE2bMetadataFd(fd, opts.metadata);
        metadata = readE2bMetadataFd(fd);
      }
    } catch (err) {
      throw metadataError(err);
    }
    // Only this daemon's own watchers need the announcement, made on the open descriptor after the
    // rename; without one the descriptor is closed first, so a failed flush fails the upload.
    const announce = treeWatchersOpen() > 0;
    if (!announce) {
      const closing = fd;
      fd = undefined;
      try {
        if (small) closeSync(closing);
        else await closeFd(closing);
      } catch (err) {
        throw writeError(err, opts.contentLength);
      }
    }
    try {
      await fdOps().renameAtAsync(dir, tempName, dir, name, 0);
      renamed = true;
    } catch (err) {
      throw new HttpError(500, `error finalizing upload: ${goErrorText(withOp(err, "rename", path))}`);
    }
    if (announce && fd !== undefined) announceWrite(fd, opts);
    return metadata;
  } finally {
    // Unlinked before the descriptor closes: once the daemon holds no descriptor, no temp file is left.
    if (!renamed) {
      try {
        fdOps().unlinkAt(dir, tempName, 0);
      } catch {
        /* already gone */
      }
    }
    if (fd !== undefined) await closeFd(fd).catch(() => {});
  }
}
