import { chmod, chown, lchown, lstat } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { ChmodRequest, ChmodResponseSchema, ChownRequest, ChownResponseSchema } from "../../gen/envdts/v1/filesystem_ext_pb.js";
import { lookupGroupId, lookupUserByNameOrId } from "../../users/passwd.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fsRequest, type FsRequest } from "../request.js";
import { walkTree } from "../walk.js";

function fsFailure(err: unknown, op: string, path: string | Buffer): ConnectError {
  if (err instanceof ConnectError) return err;
  const shown = path.toString();
  if ((err as NodeJS.ErrnoException).code === "ENOENT") return new ConnectError(`file not found: ${goPathError(op, shown, err)}`, Code.NotFound);
  return new ConnectError(`error changing file: ${goPathError(op, shown, err)}`, failureCode(err));
}

/** Resolves the target and checks it exists; the final symlink is followed, so the jail checks its target too. */
async function target(r: FsRequest, raw: string): Promise<string> {
  const path = r.resolve(raw);
  r.checkFollow(path);
  try {
    await lstat(path);
  } catch (err) {
    throw fsFailure(err, "lstat", path);
  }
  return path;
}

/**
 * envdts.v1.FilesystemExt.Chmod: sets the permission bits (0–0o7777) of the path
 * (following a final symlink, as chmod(1)) and, with `recursive`, of everything
 * below it except symlinks, whose mode Linux ignores.
 */
export async function chmodPath(ctx: DaemonContext, req: ChmodRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof ChmodResponseSchema>> {
  if (req.mode > 0o7777) throw new ConnectError(`mode ${req.mode.toString(8)} is not a permission mode (0 to 7777 octal)`, Code.InvalidArgument);
  const r = fsRequest(ctx, hctx);
  const path = await target(r, req.path);
  // As the user when enforced: the kernel lets only the owner chmod.
  const setMode = (p: string | Buffer) => (r.access.enforced ? r.access.chmod(p, req.mode) : chmod(p, req.mode));
  let changed = 0n;
  try {
    await setMode(path);
    changed++;
    if (req.recursive && (await lstat(path, {})).isDirectory()) {
      for await (const { abs } of walkTree(Buffer.from(path), { depth: Number.MAX_SAFE_INTEGER })) {
        const st = await lstat(abs).catch(() => undefined);
        if (!st || st.isSymbolicLink()) continue;
        await setMode(abs);
        changed++;
      }
    }
  } catch (err) {
    throw fsFailure(err, "chmod", path);
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
  const path = await target(r, req.path);
  // As the user when enforced: the kernel lets an owner change only the group, to one of its own.
  const setOwner = (p: string | Buffer, follow: boolean) => (r.access.enforced ? r.access.chown(p, uid, gid, follow) : follow ? chown(p, uid, gid) : lchown(p, uid, gid));
  let changed = 0n;
  try {
    await setOwner(path, true);
    changed++;
    if (req.recursive && (await lstat(path)).isDirectory()) {
      for await (const { abs } of walkTree(Buffer.from(path), { depth: Number.MAX_SAFE_INTEGER })) {
        const st = await lstat(abs).catch(() => undefined);
        if (!st) continue;
        await setOwner(abs, false);
        changed++;
      }
    }
  } catch (err) {
    throw fsFailure(err, "chown", path);
  }
  return { entry: entryInfo(path, { fsRoot: ctx.config.fsRoot }), changed };
}
