import { constants, type ReadStream, type Stats } from "node:fs";
import { open, realpath, stat, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import { ConnectError } from "@connectrpc/connect";
import { Transform, type TransformCallback, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { drained } from "./copy-body.js";
import { readStreamOn } from "./fd-streams.js";
import type { DaemonContext } from "../daemon-context.js";
import { createDownloadGzip, gzipLevelFor } from "./adaptive-gzip.js";
import { HttpError, sendJsonError } from "../http/respond.js";
import type { HttpRequest, HttpResponse, RouteHandler } from "../http/types.js";
import { ByteRangesBody, contentRange, parseRange, type ByteRange } from "./byte-ranges.js";
import { inlineDisposition } from "./content-disposition.js";
import { goExt, loadMimeTable, typeByExtension } from "./content-type.js";
import { identityAcceptable, isImplicitFetchDefault, negotiateCoding } from "./encoding.js";
import { errnoCode, goErrorText } from "../filesystem/go-text.js";
import { formatHttpDate } from "./http-date.js";
import { descriptorProblem, openForUser, permissionProblem } from "./permissions.js";
import { checkPreconditions } from "./preconditions.js";
import { parseFilesQuery, QueryParamError, type FilesQuery } from "./query.js";
import { checkFileAccess, fileRequestUser, pathHttpError, resolveFilePath } from "./request-context.js";
import { openHandle } from "../filesystem/resolve.js";
import type { UserAccount } from "../users/passwd.js";
import { sendGoPlainError } from "./respond.js";
import { detectContentType, SNIFF_LEN } from "./sniff.js";
import { isAnonymousDevice, isPseudoFsDevice, sendPseudoFile } from "./pseudo-fs.js";

const CHUNK = 64 * 1024;

function header(req: HttpRequest, name: string): string {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? "";
}

/** The file's bytes [start, start+length), streamed; `length` undefined means to the end. */
function fileStream(handle: FileHandle, start: number, length?: number): ReadStream {
  // Over the numeric fd (streams made from a FileHandle keep it referenced, and close() would
  // wait for them), which the stream must never close itself: see fd-streams.ts.
  return readStreamOn(handle, { start, end: length === undefined ? undefined : start + length - 1, highWaterMark: CHUNK });
}

/** Fails once more than `limit` bytes went by (files that grow while being sent gzipped). */
class CapBytes extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super({ highWaterMark: CHUNK });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    cb(this.limit > 0 && this.seen > this.limit ? new Error(`file grew beyond the limit of ${this.limit} bytes`) : null, chunk);
  }
}

async function sniff(handle: FileHandle): Promise<string> {
  const buf = Buffer.alloc(SNIFF_LEN);
  const { bytesRead } = await handle.read(buf, 0, SNIFF_LEN, 0);
  return detectContentType(buf.subarray(0, bytesRead));
}

function refuseTooLarge(ctx: DaemonContext, bytes: number): void {
  const limit = ctx.config.maxFileBytes;
  if (limit > 0 && bytes > limit) throw new HttpError(413, `file size ${bytes} exceeds the limit of ${limit} bytes`);
}

/** A piece of a response body: literal bytes, or `length` bytes of the file from `start`. */
type BodyPart = Buffer | { start: number; length: number };

async function write(res: HttpResponse, chunk: Buffer): Promise<void> {
  if (!(res as Writable).write(chunk)) await drained(res as Writable, "client closed the connection");
}

/**
 * Writes the body pieces with backpressure. A file that shrank meanwhile would leave
 * the response shorter than its Content-Length, so that fails (and the caller drops
 * the connection) instead of ending a response that looks complete.
 */
async function send(res: HttpResponse, handle: FileHandle, parts: BodyPart[]): Promise<void> {
  for (const part of parts) {
    if (Buffer.isBuffer(part)) {
      await write(res, part);
      continue;
    }
    if (part.length === 0) continue;
    let sent = 0;
    for await (const chunk of fileStream(handle, part.start, part.length)) {
      sent += (chunk as Buffer).length;
      await write(res, chunk as Buffer);
    }
    if (sent < part.length) throw new Error("file shrank while it was being sent");
  }
  res.end();
}

/** http.ServeContent as envd calls it: conditionals, ranges, sniffing, Content-Length. */
async function serveIdentity(
  ctx: DaemonContext,
  req: HttpRequest,
  res: HttpResponse,
  handle: FileHandle,
  file: { size: number; mtimeMs: number },
  rawPath: string,
  headers: Record<string, string>,
): Promise<void> {
  const mtime = Math.floor(file.mtimeMs / 1000);
  if (mtime !== 0) headers["last-modified"] = formatHttpDate(mtime * 1000);
  const pre = checkPreconditions(req, mtime);
  if (pre.kind === "precondition-failed") {
    res.writeHead(412, headers);
    res.end();
    return;
  }
  if (pre.kind === "not-modified") {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const ctype = typeByExtension(goExt(rawPath)) || (await sniff(handle));
  const size = file.size;
  let ranges = parseRange(pre.range, size);
  if (typeof ranges === "string") {
    if (ranges === "invalid range: failed to overlap" && size === 0) ranges = [];
    else {
      const { "last-modified": _dropped, ...kept } = headers;
      if (ranges === "invalid range: failed to overlap") kept["content-range"] = `bytes */${size}`;
      sendGoPlainError(res, 416, ranges, kept);
      return;
    }
  }
  if (ranges.reduce((n, r) => n + r.length, 0) > size) ranges = [];
  headers["accept-ranges"] = "bytes";
  if (ranges.length === 0) {
    refuseTooLarge(ctx, size);
    res.writeHead(200, { ...headers, "content-type": ctype, "content-length": String(size) });
    await send(res, handle, [{ start: 0, length: size }]);
    return;
  }
  refuseTooLarge(ctx, ranges.reduce((n, r) => n + r.length, 0));
  if (ranges.length === 1) {
    const r = ranges[0]!;
    res.writeHead(206, { ...headers, "content-type": ctype, "content-range": contentRange(r, size), "content-length": String(r.length) });
    await send(res, handle, [r]);
    return;
  }
  const multipart = new ByteRangesBody(ranges, ctype, size);
  res.writeHead(206, { ...headers, "content-type": multipart.contentTypeHeader, "content-length": String(multipart.totalLength()) });
  const parts: BodyPart[] = [];
  ranges.forEach((r: ByteRange, i) => parts.push(multipart.partHeader(i), r));
  parts.push(multipart.trailer());
  await send(res, handle, parts);
}

async function serveGzip(ctx: DaemonContext, res: HttpResponse, handle: FileHandle, size: number, rawPath: string, headers: Record<string, string>, level: number): Promise<void> {
  refuseTooLarge(ctx, size);
  res.writeHead(200, { ...headers, "content-encoding": "gzip", "content-type": typeByExtension(goExt(rawPath)) || "application/octet-stream" });
  await pipeline(fileStream(handle, 0), new CapBytes(ctx.config.maxFileBytes), createDownloadGzip(level, CHUNK), res as NodeJS.WritableStream);
}

async function handleDownload(ctx: DaemonContext, req: HttpRequest, res: HttpResponse, query: FilesQuery): Promise<void> {
  checkFileAccess(ctx, req, query, "read");
  const user = fileRequestUser(ctx, query.username);
  const rawPath = query.path ?? "";
  const path = resolveFilePath(ctx, user, rawPath, `error expanding and resolving path '${rawPath}': `);

  // Non-blocking: a path swapped for a FIFO since the stat, or a kernel file that blocks on
  // read (/proc/kmsg), must fail instead of holding one of libuv's four threads forever.
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;
  let st: Stats;
  // In the root jail the file is opened first, once, beneath the root: what is checked and sent is
  // that file, whatever is swapped in on the way to its path meanwhile.
  let pinned: FileHandle | undefined;
  try {
    if (ctx.config.fsRoot) {
      pinned = await openHandle(ctx, path, flags);
      st = await pinned.stat();
    } else st = await stat(path);
  } catch (err) {
    await pinned?.close();
    if (err instanceof ConnectError) throw pathHttpError(err, `error expanding and resolving path '${rawPath}': `);
    if (errnoCode(err) === "ENOENT") throw new HttpError(404, `path '${path}' does not exist`);
    throw new HttpError(500, `error checking if path exists '${path}': ${goErrorText(err)}`);
  }
  try {
    return await sendFile(ctx, req, res, user, path, rawPath, st, flags, pinned);
  } finally {
    await pinned?.close().catch(() => {});
  }
}

async function sendFile(ctx: DaemonContext, req: HttpRequest, res: HttpResponse, user: UserAccount, path: string, rawPath: string, st: Stats, flags: number, pinned: FileHandle | undefined): Promise<void> {
  if (st.isDirectory()) throw new HttpError(400, `path '${path}' is a directory`);
  if (st.isFIFO() || st.isSocket()) throw new HttpError(400, `path '${path}' is not a regular file`);
  if (ctx.config.enforceFilePermissions) {
    // Pinned in the root jail: the kernel, as the user, also decides on the file actually opened.
    const problem = (await permissionProblem(user, await realpath(path), "read")) ?? (pinned && (await descriptorProblem(user, pinned.fd, path, "read")));
    if (problem) throw new HttpError(403, problem);
  }

  const acceptEncoding = header(req, "accept-encoding");
  let coding = negotiateCoding(acceptEncoding);
  if (!coding) throw new HttpError(406, "error parsing Accept-Encoding: no acceptable encoding found, supported: [gzip]");
  // A transport's blanket default is no request for compression (envd would gzip anyway).
  if (coding === "gzip" && isImplicitFetchDefault(acceptEncoding)) coding = "identity";
  const headers: Record<string, string> = { vary: "Accept-Encoding" };
  const rangeOrConditional = ["range", "if-modified-since", "if-none-match", "if-range"].some((h) => header(req, h) !== "");
  if (rangeOrConditional) {
    if (!identityAcceptable(acceptEncoding)) throw new HttpError(406, "identity encoding not acceptable for Range or conditional request");
    coding = "identity";
  }

  await loadMimeTable();
  let handle: FileHandle;
  try {
    // Enforced: opened as the user, so the kernel decides on the very file that is read.
    if (pinned) handle = pinned;
    else handle = ctx.config.enforceFilePermissions && user.uid !== 0 ? await openForUser(user, path, flags) : await open(path, flags);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw new HttpError(500, `error opening file '${path}': ${goErrorText(err)}`);
  }
  try {
    headers["content-disposition"] = inlineDisposition(posix.basename(path));
    // The size comes from the opened file (Go seeks it); the modification time from the first stat.
    const opened = await handle.stat();
    if (opened.isFIFO() || opened.isSocket()) throw new HttpError(400, `path '${path}' is not a regular file`);
    if (opened.isFile() && isAnonymousDevice(opened.dev) && (await isPseudoFsDevice(opened.dev, path))) return await sendPseudoFile(res, handle, rawPath, headers, coding === "gzip", ctx.config.maxFileBytes);
    // Devices are sent as long as stat says (0 for /dev/zero), never read to an end they lack.
    if (!opened.isFile()) coding = "identity";
    const { size } = opened;
    if (coding === "gzip") {
      // Data that does not compress goes out as it is whenever the client accepts that
      // (envd would gzip it anyway; Node's fetch asks for gzip on every request).
      const level = await gzipLevelFor(handle, size);
      if (level === 0 && identityAcceptable(acceptEncoding)) coding = "identity";
      else return await serveGzip(ctx, res, handle, size, rawPath, headers, level);
    }
    await serveIdentity(ctx, req, res, handle, { size, mtimeMs: st.mtimeMs }, rawPath, headers);
  } finally {
    await handle.close().catch(() => {});
  }
}

/** GET /files: streamed download with envd's negotiation, ranges and errors. */
export function downloadRoute(ctx: DaemonContext): RouteHandler {
  return async (req, res, url) => {
    let query: FilesQuery;
    try {
      query = parseFilesQuery(url.searchParams);
    } catch (err) {
      if (!(err instanceof QueryParamError)) throw err;
      sendGoPlainError(res, 400, err.message);
      return;
    }
    try {
      await handleDownload(ctx, req, res, query);
    } catch (err) {
      if (res.headersSent) {
        // The body was cut short (client gone or file error): never leave a short response looking complete.
        if (!res.writableFinished) res.destroy();
        return;
      }
      if (err instanceof HttpError) sendJsonError(res, err.status, err.message);
      else {
        ctx.log.error({ err, path: query.path }, "download failed");
        sendJsonError(res, 500, (err as Error)?.message ?? String(err));
      }
    }
  };
}
