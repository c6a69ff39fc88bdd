import { renameSync } from "node:fs";
import { posix } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { MoveRequest, MoveResponseSchema } from "../../gen/filesystem_pb.js";
import { ensureDirs } from "../ensure-dirs.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fsRequest } from "../request.js";

/**
 * Filesystem.Move: rename(2) after creating the destination's parents. Like envd
 * there is no copy fallback across filesystems (EXDEV is internal); a symlink is
 * moved itself, not its target.
 */
export async function move(ctx: DaemonContext, req: MoveRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof MoveResponseSchema>> {
  const r = fsRequest(ctx, hctx);
  const source = r.resolve(req.source);
  const destination = r.resolve(req.destination);
  await r.access.requireRemove(source);
  await r.access.requireCreate(destination);
  try {
    await ensureDirs(posix.dirname(destination), r.user.uid, r.user.gid);
  } catch (err) {
    throw new ConnectError((err as Error).message, failureCode(err));
  }
  try {
    // As the user when enforced: the kernel applies the sticky bit to both names.
    if (r.access.enforced) await r.access.rename(source, destination);
    else renameSync(source, destination);
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    // Go's *os.LinkError text: "rename <src> <dst>: <strerror>".
    const text = goPathError("rename", `${source} ${destination}`, err);
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConnectError(`source file not found: ${text}`, Code.NotFound);
    throw new ConnectError(`error renaming: ${text}`, failureCode(err));
  }
  return { entry: entryInfo(destination, { fsRoot: ctx.config.fsRoot }) };
}
