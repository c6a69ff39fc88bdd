import { PassThrough, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { HttpError } from "../http/respond.js";
import type { HttpRequest, HttpResponse } from "../http/types.js";
import type { Coding } from "./encoding.js";

/** The client went away before its request body was complete; nothing is answered. */
export class ClientGoneError extends Error {
  constructor() {
    super("client closed the connection before the request body was complete");
  }
}

/** More bytes than config.maxFileBytes arrived for one file. */
export class FileTooLargeError extends HttpError {
  constructor(limit: number) {
    super(413, `file is larger than the limit of ${limit} bytes`);
  }
}

/** Bytes discarded from a refused request before the connection is dropped instead. */
const DISCARD_LIMIT = 8 * 1024 * 1024;
const CHUNK = 64 * 1024;

/**
 * Reads at least `n` bytes (fewer at the end of the body) without consuming them:
 * they are put back unless the body ended, in which case `head` is all of it.
 */
function peek(stream: Readable, n: number): Promise<{ head: Buffer; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let len = 0;
    const finish = (err?: Error, ended = false) => {
      stream.off("readable", onReadable);
      stream.off("end", onEnd);
      stream.off("error", onGone);
      stream.off("close", onClose);
      if (err) return reject(err);
      const head = Buffer.concat(chunks);
      if (!ended && head.length > 0) stream.unshift(head);
      resolve({ head, ended });
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while (len < n && (chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        len += chunk.length;
      }
      if (len >= n) finish();
    };
    const onEnd = () => finish(undefined, true);
    const onGone = () => finish(new ClientGoneError());
    const onClose = () => {
      if (!(stream as HttpRequest).complete) onGone();
    };
    stream.on("readable", onReadable);
    stream.on("end", onEnd);
    stream.on("error", onGone);
    stream.on("close", onClose);
  });
}

/** Go's gzip.NewReader header check, with its error texts. */
function gzipHeaderProblem(head: Buffer): string | undefined {
  if (head.length === 0) return "EOF";
  if (head.length < 10) return "unexpected EOF";
  if (head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8) return "gzip: invalid header";
  return undefined;
}

/**
 * The decoded request body as a stream of its own: destroying it never destroys the
 * request (so an error answer still reaches the client), and a client that disconnects
 * makes it fail with ClientGoneError. A gzip body whose header Go would refuse is
 * rejected here with envd's 400, before anything is written.
 */
export async function openRequestBody(req: HttpRequest, coding: Coding): Promise<Readable> {
  let source: Readable = req;
  if (coding === "gzip") {
    const { head, ended } = await peek(req, 10);
    const problem = gzipHeaderProblem(head);
    if (problem) throw new HttpError(400, `error decompressing request body: failed to create gzip reader: ${problem}`);
    if (ended) source = Readable.from([head]);
  }
  const body = coding === "gzip" ? createGunzip({ chunkSize: CHUNK }) : new PassThrough({ highWaterMark: CHUNK });
  // The body can fail (client gone, bad gzip) before its reader is attached, or after it gave
  // up: the reader sees the error itself when it reads; unheard, it would be an uncaught exception.
  body.on("error", () => {});
  if (source !== req) {
    source.pipe(body);
    return body;
  }
  const gone = () => {
    if (!req.complete && !body.destroyed) body.destroy(new ClientGoneError());
  };
  req.once("aborted", gone);
  req.once("error", gone);
  req.once("close", gone);
  body.once("close", () => {
    req.off("aborted", gone);
    req.off("error", gone);
    req.off("close", gone);
  });
  req.pipe(body);
  return body;
}

/**
 * After an early answer, throws away what is left of the request body so the answer
 * is read by the client; past DISCARD_LIMIT bytes the connection is dropped instead.
 */
export function discardRequestBody(req: HttpRequest, res: HttpResponse): void {
  if (req.complete || req.destroyed) return;
  req.unpipe();
  let seen = 0;
  const drop = () => req.destroy();
  req.on("data", (chunk: Buffer) => {
    seen += chunk.length;
    if (seen <= DISCARD_LIMIT) return;
    req.pause();
    if (res.writableFinished) drop();
    else res.once("finish", drop);
  });
  req.resume();
}
