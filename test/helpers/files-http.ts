import { request } from "node:http";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import type { Readable } from "node:stream";

/** A whole HTTP response, body undecoded. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string | Readable;
}

/**
 * A plain http.request: no automatic Accept-Encoding, no decompression, exact bytes.
 * A Readable body is piped with backpressure.
 */
export function httpRequest(url: string, opts: RawRequest = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString("utf8") });
      });
    });
    req.on("error", reject);
    const body = opts.body;
    if (body === undefined) req.end();
    else if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/** One part of a multipart/form-data body; `headerLine` overrides the Content-Disposition line. */
export interface Part {
  name: string;
  filename?: string;
  content: Buffer | string;
  contentType?: string;
  headerLine?: string;
}

/** Builds a multipart/form-data body by hand, so odd filenames go out exactly as written. */
export function multipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = "----envdtest" + randomBytes(8).toString("hex");
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = p.headerLine ?? `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ""}`;
    chunks.push(Buffer.from(`--${boundary}\r\n${disp}\r\nContent-Type: ${p.contentType ?? "application/octet-stream"}\r\n\r\n`, "utf8"));
    chunks.push(Buffer.isBuffer(p.content) ? p.content : Buffer.from(p.content, "utf8"));
    chunks.push(Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Names in `dir` that look like envd-ts upload temporaries. */
export function leftoverTemps(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.includes(".envd-upload.") || n.includes(".envd-replace.") || n.includes(".e2b-compose."));
}

/** Polls `check` until it returns true or `ms` pass. */
export async function eventually(check: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}
