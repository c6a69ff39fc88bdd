import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { DaemonContext } from "../../daemon-context.js";
import type { StatRequest, StatResponseSchema } from "../../gen/filesystem_pb.js";
import { entryInfo } from "../entry-info.js";
import { fsRequest } from "../request.js";

/** Filesystem.Stat: EntryInfo of the path itself (lstat), not_found when missing. */
export function stat(ctx: DaemonContext, req: StatRequest, hctx: HandlerContext): MessageInitShape<typeof StatResponseSchema> | Promise<MessageInitShape<typeof StatResponseSchema>> {
  const r = fsRequest(ctx, hctx);
  const path = r.resolve(req.path);
  const answer = () => ({ entry: entryInfo(path, { fsRoot: ctx.config.fsRoot }) });
  // Synchronous unless enforced: the kernel's answer for the user comes from a pool thread.
  return r.access.enforced ? r.access.requireTraverse(path).then(answer) : answer();
}
