import { constants, createWriteStream, type Stats } from "node:fs";
import { uploadTempPath } from "../filesystem/upload-temp-name.js";
import { chown, lstat, open, readlink, realpath, rename, stat, statfs, unlink, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { getXattr, listXattr, replaceE2bMetadata, setXattr, E2B_XATTR_PREFIX } from "../filesystem/xattr.js";
import { HttpError } from "../http/respond.js";
import type { Logger } from "../log.js";
import { ensureDirs } from "../filesystem/ensure-dirs.js";
import { errnoCode, goErrorText, isNoSpace } from "../filesystem/go-text.js";
import { ByteLimit, ClientGoneError, FileTooLargeError } from "./request-body.js";

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

/** Filesystems whose files are kernel interfaces: written in place, never replaced. */
const PSEUDO_FS = new Set([
  0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */, 0x64626720 /* debugfs */,
  0x74726163 /* tracefs */, 0x73636673 /* securityfs */, 0x62656570 /* configfs */, 0xcafe4a11 /* bpf */, 0xde5e81e4 /* efivarfs */,
  0x65735543 /* fusectl */, 0x6165676c /* pstore */, 0x1cd1 /* devpts */,
]);

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


async function isPseudoFs(dir: string): Promise<boolean> {
  try {
    return PSEUDO_FS.has(Number((await statfs(dir)).type));
  } catch {
    return false;
  }
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

async function streamInto(handle: FileHandle, body: Readable, opts: WriteOptions): Promise<void> {
  try {
    // A numeric fd: streams made from a FileHandle keep it referenced, and close() would wait for them.
    const sink = createWriteStream("", { fd: handle.fd, autoClose: false, highWaterMark: 64 * 1024 });
    await pipeline(body, new ByteLimit(opts.maxBytes), sink);
  } catch (err) {
    throw writeError(err, opts.contentLength);
  }
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
    handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o666);
  } catch (err) {
    if (errnoCode(err) === "ENOSPC") throw new HttpError(507, `not enough inodes available: ${goErrorText(err)}`);
    throw new HttpError(500, `error opening file: ${goErrorText(err)}`);
  }
  try {
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
async function announceWrite(target: string, log: WriteOptions["log"]): Promise<void> {
  try {
    const h = await open(target, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      await h.truncate((await h.stat()).size);
    } finally {
      await h.close();
    }
  } catch (err) {
    log.debug({ err, path: target }, "could not announce upload to watchers");
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
    target = await followSymlinks(path);
    existing = await stat(target);
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw new HttpError(500, `error getting file info: ${goErrorText(err)}`);
  }
  if (existing?.isDirectory()) throw new HttpError(400, `path is a directory: ${path}`);
  if ((existing && !existing.isFile()) || (await isPseudoFs(posix.dirname(target)))) return writeInPlace(target, body, opts);

  const temp = uploadTempPath(target);
  let handle: FileHandle;
  try {
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666);
  } catch (err) {
    if (errnoCode(err) === "ENOSPC") throw new HttpError(507, `not enough inodes available: ${goErrorText(err)}`);
    throw new HttpError(500, `error opening file: ${goErrorText(err)}`);
  }
  let renamed = false;
  try {
    try {
      await handle.chown(opts.uid, opts.gid);
      // The old mode carries over without set-id bits, which envd's chown of the old file clears too.
      if (existing) await handle.chmod(existing.mode & 0o1777);
    } catch (err) {
      throw new HttpError(500, `error changing file ownership: ${goErrorText(err)}`);
    }
    if (existing) copyForeignXattrs(target, temp, opts.log);
    await streamInto(handle, body, opts);
    try {
      await handle.close();
    } catch (err) {
      throw writeError(err, opts.contentLength);
    }
    try {
      replaceE2bMetadata(temp, opts.metadata);
    } catch (err) {
      throw metadataError(err);
    }
    try {
      await rename(temp, target);
      renamed = true;
    } catch (err) {
      throw new HttpError(500, `error finalizing upload: ${goErrorText(err)}`);
    }
    await announceWrite(target, opts.log);
  } finally {
    await handle.close().catch(() => {});
    if (!renamed) await unlink(temp).catch(() => {});
  }
}
