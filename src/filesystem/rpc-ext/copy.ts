import { closeSync, constants, fchmodSync, fchownSync, fstatSync, futimesSync } from "node:fs";
import { posix } from "node:path";
import { pipeline } from "node:stream/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { CopyRequest, CopyResponseSchema } from "../../gen/envdts/v1/filesystem_ext_pb.js";
import { readStreamOn, writeStreamOn } from "../../files-http/fd-streams.js";
import { R_OK, W_OK, X_OK, type FileAccess } from "../access.js";
import { ensureParentDirs } from "../ensure-dirs.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fdOps, O_PATH, sameFile, statAt, type FileStat } from "../fd-ops.js";
import { fsRequest } from "../request.js";
import { openParent, type ParentEntry } from "../resolve.js";
import { uploadTempPath } from "../upload-temp-name.js";
import { recordTempDir } from "../../persist/temp-dirs.js";

interface Counts {
  files: bigint;
  directories: bigint;
  symlinks: bigint;
  bytes: bigint;
  skipped: bigint;
}

/** A temporary name beside `name` for building an entry before renaming it into place; hidden from watchers as upload temporaries are. */
function tempName(name: Buffer): Buffer {
  return Buffer.from(uploadTempPath(name.toString("latin1")), "latin1");
}

/** The path of `name` beside `path` (in the same directory). */
function sibling(path: Buffer, name: Buffer): Buffer {
  const slash = path.lastIndexOf(0x2f);
  return Buffer.concat([path.subarray(0, slash + 1), name]);
}

function child(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from("/"), name]);
}

/** One side of a copy step: the entry `name` in the directory descriptor `dir`, shown to users as `shown`. */
interface At {
  dir: number;
  name: Buffer;
  shown: Buffer;
}

/** An entry of (dir, name) opened without following it, checked to be the file `st` described. */
function openSame(at: At, flags: number, st: FileStat): number {
  const fd = fdOps().openAt(at.dir, at.name, flags | constants.O_NOFOLLOW, 0);
  const now = fstatSync(fd);
  if (!sameFile(now, st)) {
    closeSync(fd);
    const err: NodeJS.ErrnoException = new Error(`ESTALE: '${at.shown.toString()}' changed while it was copied`);
    err.code = "ESTALE";
    throw err;
  }
  return fd;
}

/**
 * Copies one tree on descriptors: every source entry is opened without following it and checked to
 * be what was listed; every new entry is created under a temporary name (or, for directories, made
 * and checked on its own descriptor) and given to the requesting user on its descriptor before it
 * gets its final name. Nothing is chowned or chmodded by a name looked up again.
 */
class Copier {
  readonly counts: Counts = { files: 0n, directories: 0n, symlinks: 0n, bytes: 0n, skipped: 0n };

  constructor(
    private readonly access: FileAccess,
    private readonly uid: number,
    private readonly gid: number,
    private readonly force: boolean,
    private readonly signal: AbortSignal,
  ) {}

  private existsError(dst: Buffer): ConnectError {
    return new ConnectError(`destination already exists: ${dst.toString()}`, Code.AlreadyExists);
  }

  async copy(src: At, dst: At): Promise<void> {
    if (this.signal.aborted) throw ConnectError.from(this.signal.reason);
    const st = statAt(src.dir, src.name);
    if (!st) {
      const err: NodeJS.ErrnoException = new Error(`ENOENT: no such file or directory, lstat '${src.shown.toString()}'`);
      err.code = "ENOENT";
      throw err;
    }
    const existing = statAt(dst.dir, dst.name);
    if (st.isDirectory()) return this.copyDir(src, dst, st, existing);
    if (!st.isFile() && !st.isSymbolicLink()) {
      this.counts.skipped++;
      return;
    }
    if (existing) {
      if (!this.force) throw this.existsError(dst.shown);
      if (existing.isDirectory()) throw new ConnectError(`cannot overwrite directory ${dst.shown.toString()} with a non-directory`, Code.FailedPrecondition);
      await this.access.requireRemove(dst.shown);
    }
    const tmp = tempName(dst.name);
    // On record before the entry exists: a daemon killed mid-copy has it removed at the next start.
    recordTempDir(dst.dir);
    try {
      if (st.isSymbolicLink()) await this.copySymlink(src, dst.dir, tmp, st);
      else await this.copyFile(src, dst.dir, tmp, st);
      // Atomic replacement: readers see the old entry or the new one, never half a file.
      // As the user when enforced and replacing: the kernel applies the sticky bit.
      if (existing && this.access.enforced) await this.access.rename(sibling(dst.shown, tmp), dst.shown);
      else fdOps().renameAt(dst.dir, tmp, dst.dir, dst.name, 0);
    } catch (err) {
      try {
        fdOps().unlinkAt(dst.dir, tmp, 0);
      } catch {
        /* never created */
      }
      throw err;
    }
  }

  private async copySymlink(src: At, dir: number, tmp: Buffer, st: FileStat): Promise<void> {
    const target = fdOps().readlinkAt(src.dir, src.name);
    fdOps().symlinkAt(target, dir, tmp);
    // The link just made, on its own descriptor: owned by us and saying what we wrote, or refused.
    const fd = fdOps().openAt(dir, tmp, O_PATH | constants.O_NOFOLLOW, 0);
    try {
      const made = statAt(fd, "");
      if (!made?.isSymbolicLink() || made.uid !== process.geteuid!() || !fdOps().readlinkAt(fd, "").equals(target)) {
        throw new ConnectError(`temporary link for ${src.shown.toString()} was replaced while it was copied`, Code.Aborted);
      }
      fdOps().chownAt(fd, "", this.uid, this.gid, false);
    } finally {
      closeSync(fd);
    }
    fdOps().utimesAt(dir, tmp, st.atimeMs, st.mtimeMs, false);
    this.counts.symlinks++;
  }

  private async copyFile(src: At, dir: number, tmp: Buffer, st: FileStat): Promise<void> {
    await this.access.require(src.shown, R_OK);
    const input = openSame(src, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY, st);
    try {
      // The kernel, as the user, decides on the file actually read.
      await this.access.requireOpened(input, R_OK, src.shown);
      // Owner-only until filled; the user's from birth, on the descriptor that created it.
      const out = await fdOps().openAtAsync(dir, tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        fchownSync(out, this.uid, this.gid);
        await pipeline(readStreamOn(input, { start: 0 }), writeStreamOn(out));
        // chown came first: it clears setuid/setgid, which fchmod then restores.
        fchmodSync(out, st.mode & 0o7777);
        futimesSync(out, st.atimeMs / 1000, st.mtimeMs / 1000);
      } finally {
        closeSync(out);
      }
    } finally {
      closeSync(input);
    }
    this.counts.files++;
    this.counts.bytes += BigInt(st.size);
  }

  private async copyDir(src: At, dst: At, st: FileStat, existing: FileStat | undefined): Promise<void> {
    await this.access.require(src.shown, R_OK | X_OK);
    if (existing && !existing.isDirectory()) {
      if (!this.force) throw this.existsError(dst.shown);
      await this.access.requireRemove(dst.shown);
      if (this.access.enforced) await this.access.unlink(dst.shown);
      else fdOps().unlinkAt(dst.dir, dst.name, 0);
      existing = undefined;
    } else if (existing && !this.force) {
      throw this.existsError(dst.shown);
    }
    const from = openSame(src, constants.O_RDONLY | constants.O_DIRECTORY, st);
    try {
      await this.access.requireOpened(from, R_OK | X_OK, src.shown);
      let to: number;
      if (existing) {
        await this.access.require(dst.shown, W_OK | X_OK);
        to = fdOps().openAt(dst.dir, dst.name, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW, 0);
        await this.access.requireOpened(to, W_OK | X_OK, dst.shown).catch((err) => {
          closeSync(to);
          throw err;
        });
      } else {
        // Owner-only until filled, so a read-only source mode cannot block the children.
        to = fdOps().mkdirOwned(dst.dir, dst.name, 0o700, this.uid, this.gid);
        this.counts.directories++;
      }
      try {
        for (const name of fdOps().readDirFd(from)) {
          await this.copy({ dir: from, name, shown: child(src.shown, name) }, { dir: to, name, shown: child(dst.shown, name) });
        }
        if (!existing) {
          fchmodSync(to, st.mode & 0o7777);
          futimesSync(to, st.atimeMs / 1000, st.mtimeMs / 1000);
        }
      } finally {
        closeSync(to);
      }
    } finally {
      closeSync(from);
    }
  }
}

/** Whether directory `dir` (a descriptor) is `st` or lies below it: `..` followed up to the root. */
function isWithin(dir: number, st: FileStat): boolean {
  let fd = fdOps().openAt(dir, ".", O_PATH | constants.O_DIRECTORY, 0);
  try {
    for (let depth = 0; depth < 4096; depth++) {
      const here = statAt(fd, "")!;
      if (sameFile(here, st)) return true;
      const up = fdOps().openAt(fd, "..", O_PATH | constants.O_DIRECTORY, 0);
      const above = statAt(up, "")!;
      closeSync(fd);
      fd = up;
      if (sameFile(above, here)) return false;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * envdts.v1.FilesystemExt.Copy: files, symlinks (copied as links, never followed)
 * and directory trees; modes (setuid/setgid/sticky too) and modification times
 * are preserved, new entries belong to the requesting user. Files are written
 * under a temporary name and renamed into place. Devices, FIFOs and sockets are
 * skipped and counted. Hard links become separate files.
 */
export async function copy(ctx: DaemonContext, req: CopyRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof CopyResponseSchema>> {
  const r = fsRequest(ctx, hctx);
  const source = r.resolve(req.source);
  const destination = r.resolve(req.destination);
  let src: ParentEntry;
  let st: FileStat | undefined;
  try {
    src = openParent(ctx, source, { follow: false });
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConnectError(`source file not found: ${goPathError("lstat", source, err)}`, Code.NotFound);
    throw new ConnectError(`error getting file info: ${goPathError("lstat", source, err)}`, failureCode(err));
  }
  try {
    try {
      st = statAt(src.dir, src.name);
    } catch (err) {
      throw new ConnectError(`error getting file info: ${goPathError("lstat", source, err)}`, failureCode(err));
    }
    if (!st) throw new ConnectError(`source file not found: lstat ${source}: no such file or directory`, Code.NotFound);
    await r.access.requireTraverse(source);
    await r.access.requireCreate(destination);
    let dst: ParentEntry;
    try {
      dst = ensureParentDirs(ctx, destination, r.user.uid, r.user.gid, r.access);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      throw new ConnectError((err as Error).message, failureCode(err));
    }
    try {
      // The kernel, as the user, decides on the directory actually written into.
      await r.access.requireOpened(dst.dir, W_OK | X_OK, posix.dirname(destination));
      // By identity, not spelling: the same file under another name, or a directory into itself
      // (however its path is spelled) would copy what it is overwriting.
      const there = statAt(dst.dir, dst.name);
      if (there && sameFile(there, st)) throw new ConnectError(`source ${source} and destination ${destination} are the same file`, Code.InvalidArgument);
      if (st.isDirectory() && isWithin(dst.dir, st)) {
        throw new ConnectError(`cannot copy directory ${source} into itself (${destination})`, Code.InvalidArgument);
      }
      const copier = new Copier(r.access, r.user.uid, r.user.gid, req.force, hctx.signal);
      try {
        await copier.copy({ dir: src.dir, name: src.name, shown: Buffer.from(source) }, { dir: dst.dir, name: dst.name, shown: Buffer.from(destination) });
      } catch (err) {
        if (err instanceof ConnectError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOSPC" || code === "EDQUOT") throw new ConnectError(`error copying: ${(err as Error).message}`, Code.ResourceExhausted);
        throw new ConnectError(`error copying: ${(err as Error).message}`, failureCode(err));
      }
      return { entry: entryInfo(destination, { fsRoot: ctx.config.fsRoot }), ...copier.counts };
    } finally {
      dst.close();
    }
  } finally {
    src.close();
  }
}
