import { closeSync, constants } from "node:fs";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { ChmodRequest, ChmodResponseSchema, ChownRequest, ChownResponseSchema } from "../../gen/envdts/v1/filesystem_ext_pb.js";
import { lookupGroupId, lookupUserByNameOrId } from "../../users/passwd.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fsRequest, type FsRequest } from "../request.js";
import { fdOps, O_PATH, statAt, type FileStat } from "../fd-ops.js";
import { openPath } from "../resolve.js";

function fsFailure(err: unknown, op: string, path: string | Buffer): ConnectError {
  if (err instanceof ConnectError) return err;
  const shown = path.toString();
  if ((err as NodeJS.ErrnoException).code === "ENOENT") return new ConnectError(`file not found: ${goPathError(op, shown, err)}`, Code.NotFound);
  return new ConnectError(`error changing file: ${goPathError(op, shown, err)}`, failureCode(err));
}

/**
 * Resolves and opens the target once (O_PATH, a final symlink followed, beneath the root jail when
 * one is set). The owner check and the change then act on that descriptor: the file checked is the
 * file changed, whatever is swapped in under its name meanwhile.
 */
function openTarget(ctx: DaemonContext, r: FsRequest, raw: string): { path: string; fd: number; st: FileStat } {
  const path = r.resolve(raw);
  let fd: number;
  try {
    fd = openPath(ctx, path, O_PATH);
  } catch (err) {
    throw fsFailure(err, "lstat", path);
  }
  return { path, fd, st: statAt(fd, "")! };
}

/**
 * Every entry below the directory `dir`, depth first, each opened O_PATH|O_NOFOLLOW (a symlink is
 * the link itself) and stat'ed on that descriptor; `visit` acts on the descriptor, never the name.
 */
async function eachBelow(dir: number, shown: string, visit: (fd: number, st: FileStat, shown: string) => Promise<void> | void): Promise<void> {
  for (const name of fdOps().readDirFd(dir)) {
    let fd: number;
    try {
      fd = fdOps().openAt(dir, name, O_PATH | constants.O_NOFOLLOW, 0);
    } catch {
      continue; // gone since it was listed
    }
    try {
      const st = statAt(fd, "")!;
      const path = `${shown}/${name.toString()}`;
      await visit(fd, st, path);
      if (st.isDirectory()) await eachBelow(fd, path, visit);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * envdts.v1.FilesystemExt.Chmod: sets the permission bits (0–0o7777) of the path
 * (following a final symlink, as chmod(1)) and, with `recursive`, of everything
 * below it except symlinks, whose mode Linux ignores.
 */
export async function chmodPath(ctx: DaemonContext, req: ChmodRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof ChmodResponseSchema>> {
  if (req.mode > 0o7777) throw new ConnectError(`mode ${req.mode.toString(8)} is not a permission mode (0 to 7777 octal)`, Code.InvalidArgument);
  const r = fsRequest(ctx, hctx);
  const { path, fd, st } = openTarget(ctx, r, req.path);
  let changed = 0n;
  try {
    // As the user when enforced (the kernel lets only the owner chmod); as root on the opened
    // descriptor otherwise.
    const setMode = async (fd: number, shown: string) => (r.access.enforced ? r.access.chmod(shown, req.mode) : fdOps().chmodFd(fd, req.mode));
    await setMode(fd, path);
    changed++;
    if (req.recursive && st.isDirectory()) {
      await eachBelow(fd, path, async (child, cst, shown) => {
        if (cst.isSymbolicLink()) return;
        await setMode(child, shown);
        changed++;
      });
    }
  } catch (err) {
    throw fsFailure(err, "chmod", path);
  } finally {
    closeSync(fd);
  }
  return { entry: entryInfo(path, { fsRoot: ctx.config.fsRoot }), changed };
}

/**
 * envdts.v1.FilesystemExt.Chown: sets owner and/or group (names or numeric ids)
 * of the path (following a final symlink) and, with `recursive`, of everything
 * below it (symlinks inside are changed themselves, not followed).
 */
export async function chownPath(ctx: DaemonContext, req: ChownRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof ChownResponseSchema>> {
  if (req.user === "" && req.group === "") throw new ConnectError("give a user, a group or both", Code.InvalidArgument);
  let uid = -1;
  let gid = -1;
  if (req.user !== "") {
    const account = lookupUserByNameOrId(req.user);
    if (account) uid = account.uid;
    else if (/^\d+$/.test(req.user)) uid = Number(req.user);
    else throw new ConnectError(`unknown user '${req.user}'`, Code.InvalidArgument);
  }
  if (req.group !== "") {
    const id = lookupGroupId(req.group);
    if (id === undefined) throw new ConnectError(`unknown group '${req.group}'`, Code.InvalidArgument);
    gid = id;
  }
  const r = fsRequest(ctx, hctx);
  const { path, fd, st } = openTarget(ctx, r, req.path);
  let changed = 0n;
  try {
    // As the user when enforced (the kernel lets an owner change only the group, to one of its
    // own); as root on the opened descriptor otherwise: the file changed is the file resolved, a
    // final symlink's target, whatever is swapped in under its name meanwhile.
    const setOwner = async (fd: number, shown: string, follow: boolean) =>
      r.access.enforced ? r.access.chown(shown, uid, gid, follow) : fdOps().chownAt(fd, "", uid, gid, false);
    await setOwner(fd, path, true);
    changed++;
    if (req.recursive && st.isDirectory()) {
      await eachBelow(fd, path, async (child, _cst, shown) => {
        await setOwner(child, shown, false);
        changed++;
      });
    }
  } catch (err) {
    throw fsFailure(err, "chown", path);
  } finally {
    closeSync(fd);
  }
  return { entry: entryInfo(path, { fsRoot: ctx.config.fsRoot }), changed };
}
