import type Busboy from "busboy";
import { Readable } from "node:stream";
import { HttpError } from "../http/respond.js";
import { resolveFilePath } from "./request-context.js";
import { ClientGoneError } from "./request-body.js";
import { duplicateTargetError, uploadOne, type UploadedEntry, type UploadRequest } from "./upload-entry.js";

/** A `file` part without a filename arrives as a text field; this much of it is accepted. */
const FIELD_LIMIT = 1024 * 1024;
const FILE_HWM = 64 * 1024;

/**
 * POST /files with a multipart body: every part named `file` is streamed straight into
 * its own file, one after the other, as envd does. The target is the `path` query
 * parameter when given (so a second part is refused), else the part's filename taken
 * verbatim as a path.
 */
export async function uploadMultipart(
  up: UploadRequest,
  body: Readable,
  contentType: string,
  queryPath: string | undefined,
): Promise<UploadedEntry[]> {
  return parseMultipart(await loadBusboy(), up, body, contentType, queryPath);
}

let busboyModule: Promise<typeof Busboy> | undefined;

/** busboy is loaded on the first multipart upload, not at start (~2 MiB, ~3 ms of a cold start). */
export function loadBusboy(): Promise<typeof Busboy> {
  busboyModule ??= import("busboy").then((m) => ((m as { default?: typeof Busboy }).default ?? m) as typeof Busboy);
  return busboyModule;
}

function parseMultipart(
  busboy: typeof Busboy,
  up: UploadRequest,
  body: Readable,
  contentType: string,
  queryPath: string | undefined,
): Promise<UploadedEntry[]> {
  let parser: Busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": contentType },
      preservePath: true,
      defParamCharset: "utf8",
      fileHwm: FILE_HWM,
      limits: { fieldSize: FIELD_LIMIT },
    });
  } catch (err) {
    const why = /boundary/i.test((err as Error).message)
      ? "no multipart boundary param in Content-Type"
      : "request Content-Type isn't multipart/form-data";
    return Promise.reject(new HttpError(500, `error parsing multipart form: ${why}`));
  }

  const entries: UploadedEntry[] = [];
  const targetFor = (filename: string | undefined): string => {
    const raw = queryPath ?? filename;
    if (raw === undefined) throw new HttpError(400, "error getting multipart custom part file name: filename not found in Content-Disposition header");
    const path = resolveFilePath(up.ctx, up.user, raw, "error resolving path: ");
    if (entries.some((e) => e.path === path)) throw duplicateTargetError(path, entries);
    return path;
  };

  return new Promise((resolve, reject) => {
    let chain: Promise<void> = Promise.resolve();
    let failure: unknown;
    const fail = (err: unknown) => {
      if (failure !== undefined) return;
      failure = err;
      body.unpipe(parser);
      // Ends the part being written, so its temporary file is removed before we answer.
      parser.destroy(err instanceof Error ? err : new Error(String(err)));
      body.destroy();
      chain.finally(() => reject(failure));
    };
    const enqueue = (work: () => Promise<void>) => {
      chain = chain.then(() => (failure === undefined ? work() : undefined)).catch(fail);
    };

    parser.on("file", (name, stream, info) => {
      if (name !== "file" || failure !== undefined) {
        stream.resume();
        return;
      }
      enqueue(async () => {
        entries.push(await uploadOne(up, targetFor(info.filename), stream));
      });
    });
    parser.on("field", (name, value, info) => {
      if (name !== "file") return;
      enqueue(async () => {
        const path = targetFor(undefined);
        if (info.valueTruncated) throw new HttpError(413, `a 'file' part without a filename is limited to ${FIELD_LIMIT} bytes`);
        entries.push(await uploadOne(up, path, Readable.from([Buffer.from(value, "utf8")])));
      });
    });
    parser.on("error", (err: Error) => fail(new HttpError(500, `error reading form: ${err.message}`)));
    parser.on("finish", () => {
      chain.then(() => {
        if (failure === undefined) resolve(entries);
      });
    });
    body.on("error", (err) => fail(err instanceof ClientGoneError ? err : new HttpError(500, `error reading form: ${err.message}`)));
    body.pipe(parser);
  });
}
