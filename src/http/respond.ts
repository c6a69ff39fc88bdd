import type { HttpResponse } from "./types.js";

/** E2B's REST error: JSON `{code, message}` plus a newline. */
export function sendJsonError(res: HttpResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ code: status, message }) + "\n";
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "x-content-type-options": "nosniff",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** A JSON body with Go's encoder's trailing newline. */
export function sendJson(res: HttpResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** A plain-text body (chi's 404, /init's errors). */
export function sendText(res: HttpResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A status with no body (204s, bare errors). */
export function sendEmpty(res: HttpResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers);
  res.end();
}

/** An error a REST handler raises; mapped to E2B's JSON error at the edge. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Plain-text body instead of JSON (E2B does this on a few routes). */
    readonly plain = false,
  ) {
    super(message);
  }
}
