import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { EntryInfo, ListDirRequest, ListDirResponseSchema } from "../../gen/filesystem_pb.js";
import { entryInfo } from "../entry-info.js";
import { listRoot } from "../list-root.js";
import { fsRequest, type FsRequest } from "../request.js";
import { pinDirectory, type PinnedPath } from "../resolve.js";
import { walkTree } from "../walk.js";

/**
 * Filesystem.ListDir: every entry down to `depth` (0 means 1) in lexical
 * pre-order, the root excluded and followed if it is a symlink, each `path`
 * rewritten onto the requested (unresolved) root. Entries that vanish mid-walk
 * are skipped; names that are not UTF-8 are listed with U+FFFD in place of the
 * bad bytes instead of failing the whole response as envd does.
 */
export async function listDir(ctx: DaemonContext, req: ListDirRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof ListDirResponseSchema>> {
  const depth = req.depth === 0 ? 1 : req.depth;
  const r = fsRequest(ctx, hctx);
  const requested = r.resolve(req.path);
  const resolved = listRoot(r, requested);
  // In the root jail: walked from the directory's own descriptor, resolved once beneath the root.
  let pin: PinnedPath;
  try {
    pin = pinDirectory(ctx, requested);
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`error reading directory ${resolved}: ${(err as Error).message}`, failureCode(err));
  }
  try {
    return await listFrom(ctx, hctx, r, requested, resolved, pin.path, depth);
  } finally {
    pin.release();
  }
}

async function listFrom(ctx: DaemonContext, hctx: HandlerContext, r: FsRequest, requested: string, resolved: string, walkRoot: Buffer, depth: number): Promise<MessageInitShape<typeof ListDirResponseSchema>> {
  const access = r.access;
  const prefix = requested === "/" ? "/" : requested + "/";
  const entries: EntryInfo[] = [];
  // The response could never be sent once it outgrows the message limit, so stop walking there
  // rather than holding a whole filesystem's entries in memory first (a lower bound of the encoding).
  const limit = ctx.config.maxMessageBytes;
  let encoded = 0;
  try {
    const walk = walkTree(walkRoot, {
      depth,
      withStats: true,
      // Asked of the kernel as the user by the directory's real path: the user cannot reach the
      // daemon's /proc/self/fd.
      canEnter: access.enforced ? (_abs, rel) => access.canEnter(Buffer.concat([Buffer.from(resolved === "/" ? "/" : resolved + "/"), rel])) : undefined,
      // In the root jail every subdirectory is opened from its parent's descriptor without following.
      pinDirs: ctx.config.fsRoot !== undefined,
    });
    for await (const { rel, abs, listing, index } of walk) {
      if (hctx.signal.aborted) throw ConnectError.from(hctx.signal.reason);
      try {
        const displayPath = prefix + rel.toString("utf8");
        const entry = listing?.entryInfo(index, displayPath) ?? entryInfo(abs, { displayPath, fsRoot: ctx.config.fsRoot });
        encoded += Buffer.byteLength(entry.name) + Buffer.byteLength(entry.path) + 16;
        if (limit > 0 && encoded > limit) {
          throw new ConnectError(`listing ${requested} exceeds the message size limit of ${limit} bytes: use a smaller depth or envdts.v1.FilesystemExt/ListDirPage`, Code.ResourceExhausted);
        }
        entries.push(entry);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.NotFound) continue;
        // Beyond PATH_MAX (a hostile deep tree): not addressable by path, so not listed, rather than failing the listing.
        if (err instanceof ConnectError && /name too long/.test(err.rawMessage)) continue;
        throw err;
      }
    }
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`error reading directory ${resolved}: ${(err as Error).message}`, failureCode(err));
  }
  return { entries };
}
