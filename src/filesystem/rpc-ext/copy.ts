import { constants, lstatSync, realpathSync, type Stats } from "node:fs";
import { chmod, chown, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, rename, symlink, unlink, utimes } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { CopyRequest, CopyResponseSchema } from "../../gen/envdts/v1/filesystem_ext_pb.js";
import { R_OK, W_OK, X_OK, type FileAccess } from "../access.js";
import { ensureDirs } from "../ensure-dirs.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fsRequest } from "../request.js";

interface Counts {
  files: bigint;
  directories: bigint;
  symlinks: bigint;
  bytes: bigint;
  skipped: bigint;
}

async function lstatOrUndefined(path: Buffer): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** A sibling name for building an entry before renaming it into place. */
function tempSibling(path: Buffer): Buffer {
  const dir = posix.dirname(path.toString("latin1"));
  return Buffer.from(posix.join(dir, `.envd-copy-${randomBytes(6).toString("hex")}`), "latin1");
}

function child(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from("/"), name]);
}

/** Copies one tree; new entries belong to the requesting user, as uploads do. */
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

  async copy(src: Buffer, dst: Buffer): Promise<void> {
    if (this.signal.aborted) throw ConnectError.from(this.signal.reason);
    const st = await lstat(src);
    const existing = await lstatOrUndefined(dst);
    if (st.isDirectory()) return this.copyDir(src, dst, st, existing);
    if (!st.isFile() && !st.isSymbolicLink()) {
      this.counts.skipped++;
      return;
    }
    if (existing) {
      if (!this.force) throw this.existsError(dst);
      if (existing.isDirectory()) throw new ConnectError(`cannot overwrite directory ${dst.toString()} with a non-directory`, Code.FailedPrecondition);
      await this.access.requireRemove(dst);
    }
    const tmp = tempSibling(dst);
    try {
      if (st.isSymbolicLink()) {
        await symlink(await readlink(src, { encoding: "buffer" }), tmp);
        await lchown(tmp, this.uid, this.gid);
        await lutimes(tmp, st.atime, st.mtime);
        this.counts.symlinks++;
      } else {
        await this.access.require(src, R_OK);
        await copyFile(src, tmp, constants.COPYFILE_FICLONE);
        // chown first: it clears setuid/setgid, which chmod then restores.
        await chown(tmp, this.uid, this.gid);
        await chmod(tmp, st.mode & 0o7777);
        await utimes(tmp, st.atime, st.mtime);
        this.counts.files++;
        this.counts.bytes += BigInt(st.size);
      }
      // Atomic replacement: readers see the old entry or the new one, never half a file.
      // As the user when enforced and replacing: the kernel applies the sticky bit.
      if (existing && this.access.enforced) await this.access.rename(tmp, dst);
      else await rename(tmp, dst);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  private async copyDir(src: Buffer, dst: Buffer, st: Stats, existing: Stats | undefined): Promise<void> {
    await this.access.require(src, R_OK | X_OK);
    if (existing && !existing.isDirectory()) {
      if (!this.force) throw this.existsError(dst);
      await this.access.requireRemove(dst);
      if (this.access.enforced) await this.access.unlink(dst);
      else await unlink(dst);
      existing = undefined;
    } else if (existing && !this.force) {
      throw this.existsError(dst);
    }
    if (existing) {
      await this.access.require(dst, W_OK | X_OK);
    } else {
      // Owner-only until filled, so a read-only source mode cannot block the children.
      await mkdir(dst, 0o700);
      await chown(dst, this.uid, this.gid);
      this.counts.directories++;
    }
    const names = await readdir(src, { encoding: "buffer" });
    for (const name of names) await this.copy(child(src, name), child(dst, name));
    if (!existing) {
      await chmod(dst, st.mode & 0o7777);
      await utimes(dst, st.atime, st.mtime);
    }
  }
}

function realOrLexical(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return posix.resolve(path);
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
  let st: Stats;
  try {
    st = lstatSync(source);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConnectError(`source file not found: ${goPathError("lstat", source, err)}`, Code.NotFound);
    throw new ConnectError(`error getting file info: ${goPathError("lstat", source, err)}`, failureCode(err));
  }
  await r.access.requireTraverse(source);
  await r.access.requireCreate(destination);
  if (st.isDirectory()) {
    const from = realOrLexical(source);
    const to = posix.join(realOrLexical(posix.dirname(destination)), posix.basename(destination));
    if (to === from || to.startsWith(from === "/" ? "/" : from + "/")) {
      throw new ConnectError(`cannot copy directory ${source} into itself (${destination})`, Code.InvalidArgument);
    }
  }
  try {
    await ensureDirs(posix.dirname(destination), r.user.uid, r.user.gid);
  } catch (err) {
    throw new ConnectError((err as Error).message, failureCode(err));
  }
  const copier = new Copier(r.access, r.user.uid, r.user.gid, req.force, hctx.signal);
  try {
    await copier.copy(Buffer.from(source), Buffer.from(destination));
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") throw new ConnectError(`error copying: ${(err as Error).message}`, Code.ResourceExhausted);
    throw new ConnectError(`error copying: ${(err as Error).message}`, failureCode(err));
  }
  return { entry: entryInfo(destination, { fsRoot: ctx.config.fsRoot }), ...copier.counts };
}
