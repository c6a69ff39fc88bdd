import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";

/** Bytes in a GiB and a MiB. */
export const GiB = 1024 ** 3;
/** Bytes in a MiB. */
export const MiB = 1024 ** 2;

/** Where generated inputs live between runs (world-readable: commands run as `user` read them). */
export const DATA_DIR = join(tmpdir(), "envd-bench-data");

let block: Buffer | undefined;
/**
 * 1 MiB of random bytes, the unit every large input repeats. The period (1 MiB)
 * is far beyond gzip's 32 KiB window, so the data is incompressible on the wire,
 * like the binaries and archives agents move, and a compressing path gains nothing.
 */
export function randomBlock(): Buffer {
  block ??= randomBytes(MiB);
  return block;
}

let textBuf: Buffer | undefined;
/** 1 MiB of log-like text: random base64 in 76-column lines (what commands print, not compressible much). */
export function textBlock(): Buffer {
  if (!textBuf) {
    const b64 = randomBlock().toString("base64");
    const lines: string[] = [];
    for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
    textBuf = Buffer.from(lines.join("\n") + "\n").subarray(0, MiB);
  }
  return textBuf;
}

let logBuf: Buffer | undefined;
/**
 * 1 MiB of compressible application log (timestamps, levels, a small vocabulary, numbers):
 * gzip -1 makes about a fifth of it, like the logs, CSVs and JSON agents read back.
 */
export function logBlock(): Buffer {
  if (!logBuf) {
    const words = ["request", "handled", "cache", "miss", "hit", "upstream", "timeout", "retry", "connected", "closed", "user", "session", "token", "query", "rows", "commit"];
    const levels = ["INFO ", "DEBUG", "WARN ", "ERROR"];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let t = Date.UTC(2026, 11, 7);
    const lines: string[] = [];
    let size = 0;
    while (size < MiB) {
      t += rnd(50);
      const line = `${new Date(t).toISOString()} ${levels[rnd(4)]} worker-${rnd(8)} ${words[rnd(words.length)]} ${words[rnd(words.length)]} path=/api/v1/items/${rnd(100000)} status=${[200, 201, 204, 404, 500][rnd(5)]} duration_ms=${rnd(1000) / 10} id=${rnd(1e9).toString(16)}\n`;
      lines.push(line);
      size += line.length;
    }
    logBuf = Buffer.from(lines.join("")).subarray(0, MiB);
  }
  return logBuf;
}

/** A file of `bytes` bytes of `kind`, generated once and reused while its size matches. */
export function dataFile(name: string, bytes: number, kind: "binary" | "text" | "log" = "binary"): string {
  mkdirSync(DATA_DIR, { recursive: true, mode: 0o755 });
  chmodSync(DATA_DIR, 0o755);
  const path = join(DATA_DIR, name);
  try {
    if (statSync(path).size === bytes) return path;
  } catch {
    /* generate it */
  }
  const fd = openSync(path, "w", 0o644);
  const b = kind === "text" ? textBlock() : kind === "log" ? logBlock() : randomBlock();
  for (let left = bytes; left > 0; left -= b.length) writeSync(fd, b, 0, Math.min(b.length, left));
  closeSync(fd);
  chmodSync(path, 0o644);
  return path;
}

/** `bytes` incompressible bytes as a Node stream (64 KiB chunks, views of one block: no per-chunk allocation). */
export function sourceStream(bytes: number): Readable {
  const b = randomBlock();
  const chunk = 64 * 1024;
  let sent = 0;
  return new Readable({
    highWaterMark: 4 * chunk,
    read() {
      while (sent < bytes) {
        const off = sent % b.length;
        const n = Math.min(chunk, bytes - sent, b.length - off);
        sent += n;
        if (!this.push(b.subarray(off, off + n))) return;
      }
      this.push(null);
    },
  });
}

/** The same bytes as a web ReadableStream, which is what the SDK streams uploads from. */
export function sourceWebStream(bytes: number): ReadableStream<Uint8Array> {
  return Readable.toWeb(sourceStream(bytes)) as unknown as ReadableStream<Uint8Array>;
}
