/**
 * `inline; filename=...` exactly as Go's mime.FormatMediaType writes it for envd's
 * downloads: a bare token when possible, a quoted string with backslash escapes
 * otherwise, and RFC 2231 `filename*=utf-8''...` when the name is not printable ASCII.
 */

const TSPECIALS = new Set('()<>@,;:\\"/[]?='.split("").map((c) => c.charCodeAt(0)));

function isTokenByte(b: number): boolean {
  return b > 0x20 && b < 0x7f && !TSPECIALS.has(b);
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenByte(s.charCodeAt(i))) return false;
  return true;
}

/** Go's needsEncoding: any rune outside printable ASCII other than tab. */
function needsEncoding(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if ((c < 0x20 || c > 0x7e) && c !== 0x09) return true;
  }
  return false;
}

function rfc2231Encode(value: string): string {
  let out = "";
  for (const b of Buffer.from(value, "utf8")) {
    const escape = b <= 0x20 || b >= 0x7f || b === 0x2a || b === 0x27 || b === 0x25 || TSPECIALS.has(b);
    out += escape ? "%" + b.toString(16).toUpperCase().padStart(2, "0") : String.fromCharCode(b);
  }
  return out;
}

/** The Content-Disposition header envd sends for a download of `basename`. */
export function inlineDisposition(basename: string): string {
  if (needsEncoding(basename)) return `inline; filename*=utf-8''${rfc2231Encode(basename)}`;
  if (isToken(basename)) return `inline; filename=${basename}`;
  return `inline; filename="${basename.replace(/["\\]/g, (c) => "\\" + c)}"`;
}
