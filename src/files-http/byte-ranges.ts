import { randomBytes } from "node:crypto";

/** One byte range of a file: `length` bytes from `start`. */
export interface ByteRange {
  start: number;
  length: number;
}

/** Why a Range header cannot be served; the texts are Go's, sent with 416. */
export type RangeProblem = "invalid range" | "invalid range: failed to overlap";

const INT = /^[+-]?\d+$/;

/** Go's textproto.TrimString. */
function trimAscii(s: string): string {
  return s.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
}

/**
 * Parses a Range header against a file of `size` bytes exactly as Go's
 * http.ServeContent does (RFC 7233, with Go's treatment of odd inputs).
 */
export function parseRange(header: string, size: number): ByteRange[] | RangeProblem {
  if (header === "") return [];
  if (!header.startsWith("bytes=")) return "invalid range";
  const ranges: ByteRange[] = [];
  let noOverlap = false;
  for (const raw of header.slice(6).split(",")) {
    const ra = trimAscii(raw);
    if (ra === "") continue;
    const dash = ra.indexOf("-");
    if (dash === -1) return "invalid range";
    const start = trimAscii(ra.slice(0, dash));
    const end = trimAscii(ra.slice(dash + 1));
    if (start === "") {
      if (end === "" || end[0] === "-" || !INT.test(end)) return "invalid range";
      let n = Number(end);
      if (n < 0) return "invalid range";
      if (n > size) n = size;
      ranges.push({ start: size - n, length: n });
      continue;
    }
    if (!INT.test(start)) return "invalid range";
    const first = Number(start);
    if (first < 0) return "invalid range";
    if (first >= size) {
      noOverlap = true;
      continue;
    }
    if (end === "") {
      ranges.push({ start: first, length: size - first });
      continue;
    }
    if (!INT.test(end)) return "invalid range";
    let last = Number(end);
    if (first > last) return "invalid range";
    if (last >= size) last = size - 1;
    ranges.push({ start: first, length: last - first + 1 });
  }
  if (noOverlap && ranges.length === 0) return "invalid range: failed to overlap";
  return ranges;
}

/** The Content-Range value of one range. */
export function contentRange(r: ByteRange, size: number): string {
  return `bytes ${r.start}-${r.start + r.length - 1}/${size}`;
}

/** A multipart/byteranges body layout, written the way Go's mime/multipart writer does. */
export class ByteRangesBody {
  readonly boundary = randomBytes(30).toString("hex");

  constructor(
    readonly ranges: ByteRange[],
    private readonly contentType: string,
    private readonly size: number,
  ) {}

  get contentTypeHeader(): string {
    return `multipart/byteranges; boundary=${this.boundary}`;
  }

  /** The bytes written before range `i`'s data. */
  partHeader(i: number): Buffer {
    const lead = i === 0 ? `--${this.boundary}\r\n` : `\r\n--${this.boundary}\r\n`;
    const r = this.ranges[i]!;
    return Buffer.from(`${lead}Content-Range: ${contentRange(r, this.size)}\r\nContent-Type: ${this.contentType}\r\n\r\n`, "utf8");
  }

  /** The closing delimiter. */
  trailer(): Buffer {
    return Buffer.from(`\r\n--${this.boundary}--\r\n`, "utf8");
  }

  /** The Content-Length of the whole body. */
  totalLength(): number {
    let n = this.trailer().length;
    for (let i = 0; i < this.ranges.length; i++) n += this.partHeader(i).length + this.ranges[i]!.length;
    return n;
  }
}
