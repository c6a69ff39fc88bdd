import { statSync } from "node:fs";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { MakeDirRequest, MakeDirResponseSchema } from "../../gen/filesystem_pb.js";
import { ensureDirs } from "../ensure-dirs.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fsRequest } from "../request.js";

/**
 * Filesystem.MakeDir: creates the directory and missing parents (0755, owned by
 * the user). already_exists for an existing directory (the SDK then returns
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
  try {
    await ensureDirs(path, r.user.uid, r.user.gid);
  } catch (err) {
    throw new ConnectError((err as Error).message, failureCode(err));
  }
  return { entry: entryInfo(path, { fsRoot: ctx.config.fsRoot }) };
}
