import { statSync } from "node:fs";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { MakeDirRequest, MakeDirResponseSchema } from "../../gen/filesystem_pb.js";
import { closeSync } from "node:fs";
import { ensureParentDirs } from "../ensure-dirs.js";
import { fdOps, statAt } from "../fd-ops.js";
import { goErrorText } from "../go-text.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fsRequest } from "../request.js";

/**
 * Filesystem.MakeDir: creates the directory and missing parents (0755, owned by
 * the user from birth: never chowned by a name that could have been swapped). already_exists for an existing directory (the SDK then returns
 * false), invalid_argument when a non-directory is in the way.
 */
export async function makeDir(ctx: DaemonContext, req: MakeDirRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof MakeDirResponseSchema>> {
  const r = fsRequest(ctx, hctx);
  const path = r.resolve(req.path);
  r.checkFollow(path);
  let existing: boolean | undefined;
  try {
    existing = statSync(path).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ConnectError(`error getting file info: ${goPathError("stat", path, err)}`, failureCode(err));
    }
  }
  if (existing === true) throw new ConnectError(`directory already exists: ${path}`, Code.AlreadyExists);
  if (existing === false) throw new ConnectError(`path already exists but it is not a directory: ${path}`, Code.InvalidArgument);
  await r.access.requireCreate(path);
  let parent;
  try {
    parent = ensureParentDirs(ctx, path, r.user.uid, r.user.gid, r.access);
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new ConnectError((err as Error).message, failureCode(err));
  }
  try {
    // Owned by the user from birth: made, checked and chowned on its own descriptor.
    // As the user when enforced: the kernel decides on the directory actually written into.
    closeSync(r.access.runSync(() => fdOps().mkdirOwned(parent.dir, parent.name, 0o755, r.user.uid, r.user.gid)));
  } catch (err) {
    // A concurrent creator won: a directory there is what was asked for (envd's MkdirAll).
    if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !statAt(parent.dir, parent.name, true)?.isDirectory()) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === "EEXIST") throw new ConnectError(`path already exists but it is not a directory: ${path}`, Code.InvalidArgument);
      e.syscall = "mkdir";
      e.path = path;
      throw new ConnectError(`failed to create directory: ${goErrorText(e)}`, failureCode(err));
    }
  } finally {
    parent.close();
  }
  return { entry: entryInfo(path, { fsRoot: ctx.config.fsRoot }) };
}
