import type { HttpRequest } from "../http/types.js";
import { parseHttpDate } from "./http-date.js";

/**
 * The outcome of RFC 7232 preconditions as Go's http.ServeContent evaluates them for a
 * file with no ETag (envd sets none): 412, 304, or go on with the effective Range header.
 */
export type PreconditionResult = { kind: "precondition-failed" } | { kind: "not-modified" } | { kind: "proceed"; range: string };

type Cond = "none" | "true" | "false";

function header(req: HttpRequest, name: string): string {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? "";
}

function trimAscii(s: string): string {
  return s.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
}

/** Go's scanETag: a syntactically valid (weak or strong) entity tag at the start of `s`. */
function scanETag(input: string): { etag: string; rest: string } | undefined {
  const s = trimAscii(input);
  const start = s.startsWith("W/") ? 2 : 0;
  if (s.length - start < 2 || s[start] !== '"') return undefined;
  for (let i = start + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80) continue;
    if (c === 0x22) return { etag: s.slice(0, i + 1), rest: s.slice(i + 1) };
    return undefined;
  }
  return undefined;
}

/** If-Match / If-None-Match lists: only `*` can match, since there is no current ETag. */
function listMatches(value: string): Cond {
  if (value === "") return "none";
  let buf = value;
  for (;;) {
    buf = trimAscii(buf);
    if (buf.length === 0) break;
    if (buf[0] === ",") {
      buf = buf.slice(1);
      continue;
    }
    if (buf[0] === "*") return "true";
    const scanned = scanETag(buf);
    if (!scanned) break;
    buf = scanned.rest;
  }
  return "false";
}

/**
 * Evaluates If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since and If-Range
 * for a file last modified at `mtimeSeconds` (0 = unknown, as Go's isZeroTime).
 */
export function checkPreconditions(req: HttpRequest, mtimeSeconds: number): PreconditionResult {
  const known = mtimeSeconds !== 0;
  let ch = listMatches(header(req, "if-match"));
  if (ch === "none") {
    const ius = header(req, "if-unmodified-since");
    const t = ius && known ? parseHttpDate(ius) : undefined;
    if (t !== undefined) ch = mtimeSeconds <= t ? "true" : "false";
  }
  if (ch === "false") return { kind: "precondition-failed" };

  const inm = header(req, "if-none-match");
  if (inm !== "") {
    // "*" matches any current representation; other tags never match an ETag-less file.
    if (listMatches(inm) === "true") return { kind: "not-modified" };
  } else {
    const ims = header(req, "if-modified-since");
    const t = ims && known ? parseHttpDate(ims) : undefined;
    if (t !== undefined && mtimeSeconds <= t) return { kind: "not-modified" };
  }

  let range = header(req, "range");
  const ir = header(req, "if-range");
  if (range !== "" && ir !== "") {
    const stillValid = !scanETag(ir) && known && parseHttpDate(ir) === mtimeSeconds;
    if (!stillValid) range = "";
  }
  return { kind: "proceed", range };
}
