import type { HttpResponse } from "../http/types.js";

/**
 * Go's http.Error: a plain-text body with a newline, used by envd's generated parameter
 * binding and by http.ServeContent's range errors.
 */
export function sendGoPlainError(res: HttpResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = message + "\n";
  res.writeHead(status, {
    ...headers,
    "content-type": "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
    "content-length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** A JSON body without Go's encoder newline (envd writes json.Marshal output for uploads). */
export function sendMarshalled(res: HttpResponse, status: number, value: unknown, contentType: string): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": contentType, "content-length": String(Buffer.byteLength(body)) });
  res.end(body);
}
