import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { DaemonContext } from "../../daemon-context.js";
import type { StatRequest, StatResponseSchema } from "../../gen/filesystem_pb.js";
import { entryInfo } from "../entry-info.js";
import { fsRequest } from "../request.js";

/** Filesystem.Stat: EntryInfo of the path itself (lstat), not_found when missing. */
export function stat(ctx: DaemonContext, req: StatRequest, hctx: HandlerContext): MessageInitShape<typeof StatResponseSchema> {
  const r = fsRequest(ctx, hctx);
  const path = r.resolve(req.path);
  r.access.requireTraverse(path);
  return { entry: entryInfo(path, { fsRoot: ctx.config.fsRoot }) };
}
