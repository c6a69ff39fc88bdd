import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { MoveRequest, MoveResponseSchema } from "../../gen/filesystem_pb.js";
import { ensureParentDirs } from "../ensure-dirs.js";
import { fdOps, sameFile, statAt } from "../fd-ops.js";
import { fdPath, openParent, type ParentEntry } from "../resolve.js";
import { entryInfo } from "../entry-info.js";
import { goPathError } from "../errors.js";
import { fsRequest } from "../request.js";

function renameError(err: unknown, source: string, destination: string): ConnectError {
  // Go's *os.LinkError text: "rename <src> <dst>: <strerror>".
  const text = goPathError("rename", `${source} ${destination}`, err);
  if ((err as NodeJS.ErrnoException).code === "ENOENT") return new ConnectError(`source file not found: ${text}`, Code.NotFound);
  return new ConnectError(`error renaming: ${text}`, failureCode(err));
}

/**
 * Filesystem.Move: rename(2) after creating the destination's parents. Like envd
 * there is no copy fallback across filesystems (EXDEV is internal); a symlink is
 * moved itself, not its target. Both ends are resolved once into directory descriptors and
 * renamed with renameat(2) between them; two names of one file are refused.
 */
export async function move(ctx: DaemonContext, req: MoveRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof MoveResponseSchema>> {
  const r = fsRequest(ctx, hctx);
  const source = r.resolve(req.source);
  const destination = r.resolve(req.destination);
  await r.access.requireRemove(source);
  await r.access.requireCreate(destination);
  let src: ParentEntry;
  try {
    src = openParent(ctx, source, { follow: false });
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw renameError(err, source, destination);
  }
  try {
    let dst: ParentEntry;
    try {
      dst = ensureParentDirs(ctx, destination, r.user.uid, r.user.gid, r.access);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      throw new ConnectError((err as Error).message, failureCode(err));
    }
    try {
      const from = statAt(src.dir, src.name);
      const to = statAt(dst.dir, dst.name);
      // One file under two names (a hard link, a directory reached through a symlink): rename(2)
      // would do nothing and report success, leaving both. Only the very same spelling keeps
      // envd's answer (a rename onto itself succeeds).
      if (from && to && sameFile(from, to) && source !== destination) {
        throw new ConnectError(`source ${source} and destination ${destination} are the same file`, Code.InvalidArgument);
      }
      // As the user when enforced: the kernel applies the sticky bit to both names.
      // Through the descriptors already resolved (beneath the jail), not the paths again.
      if (r.access.enforced) await r.access.rename(fdPath(src.dir, src.name), fdPath(dst.dir, dst.name), 0, source);
      else fdOps().renameAt(src.dir, src.name, dst.dir, dst.name, 0);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      throw renameError(err, source, destination);
    } finally {
      dst.close();
    }
  } finally {
    src.close();
  }
  return { entry: entryInfo(destination, { fsRoot: ctx.config.fsRoot }) };
}
