import type { Readable } from "node:stream";
import type { DaemonContext } from "../daemon-context.js";
import { HttpError, sendJsonError } from "../http/respond.js";
import type { HttpRequest, HttpResponse, RouteHandler } from "../http/types.js";
import { requestCoding } from "./encoding.js";
import { metadataFromHeaders, metadataProblem } from "./metadata-headers.js";
import { uploadMultipart } from "./multipart-upload.js";
import { parseFilesQuery, parseUploadMode, QueryParamError, type FilesQuery } from "./query.js";
import { checkFileAccess, fileRequestUser, resolveFilePath } from "./request-context.js";
import { ClientGoneError, discardRequestBody, FileTooLargeError, openRequestBody } from "./request-body.js";
import { sendGoPlainError, sendMarshalled } from "./respond.js";
import { uploadOne, type UploadedEntry, type UploadRequest } from "./upload-entry.js";

function header(req: HttpRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The request's declared body length, when it has one. */
function contentLength(req: HttpRequest): number | undefined {
  const v = header(req, "content-length");
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * Go's mime.ParseMediaType as envd uses it here: the lower-cased `type[/subtype]`
 * before any parameters, or "" when it is not made of tokens.
 */
function mediaType(contentType: string): string {
  const base = contentType.split(";")[0]!.trim().toLowerCase();
  return /^[!#$%&'*+\-.^_`|~0-9a-z]+(\/[!#$%&'*+\-.^_`|~0-9a-z]+)?$/.test(base) ? base : "";
}

async function uploadRaw(up: UploadRequest, body: Readable, query: FilesQuery, length: number | undefined): Promise<UploadedEntry[]> {
  if (query.path === undefined) throw new HttpError(400, "path query parameter is required for raw body upload");
  const path = resolveFilePath(up.ctx, up.user, query.path, "error resolving path: ");
  const limit = up.ctx.config.maxFileBytes;
  if (limit > 0 && length !== undefined && length > limit) throw new FileTooLargeError(limit);
  return [await uploadOne(up, path, body)];
}

async function handleUpload(ctx: DaemonContext, req: HttpRequest, res: HttpResponse, query: FilesQuery, mode: number | undefined): Promise<void> {
  checkFileAccess(ctx, req, query, "write");
  const coding = requestCoding(header(req, "content-encoding"));
  if ("error" in coding) throw new HttpError(400, `error decompressing request body: ${coding.error}`);
  const body = await openRequestBody(req, coding.coding);
  try {
    const user = fileRequestUser(ctx, query.username);
    const metadata = metadataFromHeaders(req);
    const problem = metadataProblem(metadata);
    if (problem) throw new HttpError(400, `invalid metadata: ${problem}`);

    const length = contentLength(req);
    const up: UploadRequest = { ctx, user, metadata, contentLength: length, mode };
    const contentType = header(req, "content-type") ?? "";
    const type = mediaType(contentType);
    let entries: UploadedEntry[];
    if (type === "application/octet-stream") {
      entries = await uploadRaw(up, body, query, coding.coding === "identity" ? length : undefined);
    } else if (type.startsWith("multipart/")) {
      if (type !== "multipart/form-data") throw new HttpError(500, "error parsing multipart form: request Content-Type isn't multipart/form-data");
      entries = await uploadMultipart(up, body, contentType, query.path);
    } else {
      throw new HttpError(400, `unsupported content type: ${contentType}, expected multipart/form-data or application/octet-stream`);
    }
    // envd writes json.Marshal output with no Content-Type, which Go sniffs as text.
    sendMarshalled(res, 200, entries, "text/plain; charset=utf-8");
  } finally {
    if (!body.destroyed) body.destroy();
  }
}

/** POST /files: multipart or raw uploads, written atomically (see file-writer.ts). */
export function uploadRoute(ctx: DaemonContext): RouteHandler {
  return async (req, res, url) => {
    let query: FilesQuery;
    let mode: number | undefined;
    try {
      query = parseFilesQuery(url.searchParams);
      mode = parseUploadMode(url.searchParams);
    } catch (err) {
      if (!(err instanceof QueryParamError)) throw err;
      sendGoPlainError(res, 400, err.message);
      discardRequestBody(req, res);
      return;
    }
    try {
      await handleUpload(ctx, req, res, query, mode);
    } catch (err) {
      if (err instanceof ClientGoneError) {
        ctx.log.info({ path: query.path }, "upload abandoned by the client; nothing was replaced");
        return;
      }
      if (err instanceof HttpError) {
        if (err.status >= 500) ctx.log.warn({ path: query.path, status: err.status, err: err.message }, "upload failed");
        sendJsonError(res, err.status, err.message);
      } else {
        ctx.log.error({ err, path: query.path }, "upload failed");
        sendJsonError(res, 500, (err as Error)?.message ?? String(err));
      }
    } finally {
      discardRequestBody(req, res);
    }
  };
}
