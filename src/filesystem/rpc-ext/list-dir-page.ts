import { opendir } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { EntryInfo } from "../../gen/filesystem_pb.js";
import type { ListDirPageRequest, ListDirPageResponseSchema } from "../../gen/envdts/v1/filesystem_ext_pb.js";
import { entryInfo } from "../entry-info.js";
import { listRoot } from "../list-root.js";
import { SmallestNames } from "../name-heap.js";
import { fsRequest } from "../request.js";
import { pinDirectory, type PinnedPath } from "../resolve.js";

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;
const MAX_WINDOW = 100_000;

/** Page tokens are the last name of a page, base64url: opaque to clients, exact for any bytes. */
function decodeToken(token: string): Buffer | undefined {
  if (token === "") return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new ConnectError("invalid page_token", Code.InvalidArgument);
  return Buffer.from(token, "base64url");
}

/**
 * envdts.v1.FilesystemExt.ListDirPage: direct children ordered by name bytes.
 * The directory is streamed (opendir) once per page while a bounded heap keeps
 * only the offset+limit smallest names after the cursor, so memory is bounded by
 * the page however large the directory is; time is one pass over it. The order
 * is stable across calls; entries created or removed between pages appear or
 * not according to where their names fall relative to the cursor.
 */
export async function listDirPage(ctx: DaemonContext, req: ListDirPageRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof ListDirPageResponseSchema>> {
  const limit = req.limit === 0 ? DEFAULT_LIMIT : req.limit;
  if (limit > MAX_LIMIT) throw new ConnectError(`limit ${limit} is above the maximum of ${MAX_LIMIT}`, Code.InvalidArgument);
  if (req.offset + limit > MAX_WINDOW) throw new ConnectError(`offset + limit may not exceed ${MAX_WINDOW}; page with page_token instead`, Code.InvalidArgument);
  const after = decodeToken(req.pageToken);
  const r = fsRequest(ctx, hctx);
  const requested = r.resolve(req.path);
  const resolved = listRoot(r, requested);
  // In the root jail: read through the directory's own descriptor, resolved once beneath the root.
  let pin: PinnedPath;
  try {
    pin = pinDirectory(ctx, requested);
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`error reading directory ${resolved}: ${(err as Error).message}`, failureCode(err));
  }
  try {
    return await pageOf(ctx, req, hctx, requested, resolved, pin.path, limit, after);
  } finally {
    pin.release();
  }
}

async function pageOf(
  ctx: DaemonContext,
  req: ListDirPageRequest,
  hctx: HandlerContext,
  requested: string,
  resolved: string,
  dirPath: Buffer,
  limit: number,
  after: Buffer | undefined,
): Promise<MessageInitShape<typeof ListDirPageResponseSchema>> {
  const window = new SmallestNames(req.offset + limit);
  let total = 0;
  let beyondCursor = 0;
  try {
    const dir = await opendir(dirPath as unknown as string, { encoding: "buffer" as BufferEncoding, bufferSize: 1024 });
    for await (const dirent of dir) {
      total++;
      const name = dirent.name as unknown as Buffer;
      if (after && Buffer.compare(name, after) <= 0) continue;
      beyondCursor++;
      window.offer(name);
      if (hctx.signal.aborted) throw ConnectError.from(hctx.signal.reason);
    }
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`error reading directory ${resolved}: ${(err as Error).message}`, failureCode(err));
  }

  const page = window.sorted().slice(req.offset, req.offset + limit);
  const base = ctx.config.fsRoot ? Buffer.concat([dirPath, Buffer.from("/")]) : Buffer.from(resolved === "/" ? "/" : resolved + "/");
  const prefix = requested === "/" ? "/" : requested + "/";
  const entries: EntryInfo[] = [];
  for (const name of page) {
    try {
      entries.push(entryInfo(Buffer.concat([base, name]), { displayPath: prefix + name.toString("utf8"), fsRoot: ctx.config.fsRoot }));
    } catch (err) {
      // Removed since the scan: the page is one shorter, the cursor still advances.
      if (!(err instanceof ConnectError && err.code === Code.NotFound)) throw err;
    }
  }
  const more = beyondCursor > req.offset + limit;
  const last = page[page.length - 1];
  return { entries, nextPageToken: more && last ? last.toString("base64url") : "", total: BigInt(total) };
}
