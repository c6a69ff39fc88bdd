import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import { goPathError } from "../errors.js";
import { pinEntry, type PinnedPath } from "../resolve.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { StatRequest, StatResponseSchema } from "../../gen/filesystem_pb.js";
import { entryInfo } from "../entry-info.js";
import { fsRequest } from "../request.js";

/** Filesystem.Stat: EntryInfo of the path itself (lstat), not_found when missing. */
export function stat(ctx: DaemonContext, req: StatRequest, hctx: HandlerContext): MessageInitShape<typeof StatResponseSchema> | Promise<MessageInitShape<typeof StatResponseSchema>> {
  const r = fsRequest(ctx, hctx);
  const path = r.resolve(req.path);
  const answer = () => {
    if (!ctx.config.fsRoot) return { entry: entryInfo(path, { fsRoot: undefined }) };
    // In the root jail: looked up through the descriptor of its directory, resolved once beneath
    // the root, so a component swapped for a symlink cannot make it describe an outside file.
    let pin: PinnedPath;
    try {
      pin = pinEntry(ctx, path);
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConnectError(`file not found: ${goPathError("lstat", path, err)}`, Code.NotFound);
      throw new ConnectError(`error getting file info: ${goPathError("lstat", path, err)}`, failureCode(err));
    }
    try {
      return { entry: entryInfo(pin.path, { displayPath: path, fsRoot: ctx.config.fsRoot }) };
    } finally {
      pin.release();
    }
  };
  // Synchronous unless enforced: the kernel's answer for the user comes from a pool thread.
  return r.access.enforced ? r.access.requireTraverse(path).then(answer) : answer();
}
