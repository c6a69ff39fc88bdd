import { statfs } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { readStreamOn } from "./fd-streams.js";
import type { FileHandle } from "node:fs/promises";
import type { HttpResponse } from "../http/types.js";
import { goExt, loadMimeTable, typeByExtension } from "./content-type.js";
import { detectContentType, SNIFF_LEN } from "./sniff.js";

/** Filesystems whose files are kernel interfaces (their sizes say nothing about their content). */
export const PSEUDO_FS = new Set([
  0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */, 0x64626720 /* debugfs */,
  0x74726163 /* tracefs */, 0x73636673 /* securityfs */, 0x62656570 /* configfs */, 0xcafe4a11 /* bpf */, 0xde5e81e4 /* efivarfs */,
  0x65735543 /* fusectl */, 0x6165676c /* pstore */, 0x1cd1 /* devpts */,
]);

/**
 * Linux dev_t with major 0: the anonymous devices of nodev filesystems (proc, sysfs,
 * tmpfs, overlay, ...). Every {@link PSEUDO_FS} type is one, so a file on any other
 * device (a disk) needs no statfs to be known as an ordinary file.
 */
export function isAnonymousDevice(dev: number): boolean {
  return dev < 2 ** 32 && ((dev >>> 8) & 0xfff) === 0;
}

/** Whether `path` lives on one of {@link PSEUDO_FS}; undefined when statfs fails. */
async function pseudoFsAnswer(path: string): Promise<boolean | undefined> {
  try {
    return PSEUDO_FS.has(Number((await statfs(path)).type));
  } catch {
    return undefined;
  }
}

/** Whether `path` (a file or directory) lives on one of {@link PSEUDO_FS}; false when statfs fails. */
export async function isPseudoFs(path: string): Promise<boolean> {
  return (await pseudoFsAnswer(path)) ?? false;
}

/** How long a device's answer is trusted: an anonymous device number is reused after an unmount. */
const DEVICE_ANSWER_MS = 5000;
const pseudoByDevice = new Map<number, { pseudo: boolean; at: number }>();

/**
 * {@link isPseudoFs} for `path`, a file on device `dev`, remembered per device for a few seconds:
 * every upload to tmpfs or overlay (anonymous devices too) would otherwise cost a statfs.
 */
export async function isPseudoFsDevice(dev: number, path: string): Promise<boolean> {
  const now = Date.now();
  const known = pseudoByDevice.get(dev);
  if (known && now - known.at < DEVICE_ANSWER_MS) return known.pseudo;
  const pseudo = await pseudoFsAnswer(path);
  // A failed statfs (out of descriptors, a vanished path) is not remembered.
  if (pseudo === undefined) return false;
  if (pseudoByDevice.size >= 256) pseudoByDevice.clear();
  pseudoByDevice.set(dev, { pseudo, at: now });
  return pseudo;
}

/**
 * Sends a file of a pseudo-filesystem (/proc/cpuinfo, /sys/...): its size is 0 (procfs) or a
 * page (sysfs) whatever it holds, so Content-Length, ranges and conditionals cannot be honoured.
 * It is read to its end and sent chunked (gzipped if asked). The descriptor is non-blocking, so
 * a file that would block (/proc/kmsg) never holds a libuv thread: it fails with EAGAIN when it
 * has nothing at all, and ends where it runs dry otherwise.
 */
export async function sendPseudoFile(res: HttpResponse, handle: FileHandle, rawPath: string, headers: Record<string, string>, gzip: boolean, maxBytes: number): Promise<void> {
  const first = Buffer.alloc(64 * 1024);
  // Read before answering, so an unreadable file still gets an error status. Sequential reads
  // (no offsets): not every kernel file supports pread.
  const { bytesRead } = await handle.read(first, 0, first.length, null);
  await loadMimeTable();
  const type = typeByExtension(goExt(rawPath)) || detectContentType(first.subarray(0, Math.min(bytesRead, SNIFF_LEN)));
  res.writeHead(200, { ...headers, "content-type": type, ...(gzip ? { "content-encoding": "gzip" } : {}) });
  async function* body() {
    yield first.subarray(0, bytesRead);
    if (bytesRead === 0) return;
    let sent = bytesRead;
    try {
      for await (const chunk of readStreamOn(handle, { highWaterMark: 64 * 1024 })) {
        sent += (chunk as Buffer).length;
        // Too late for a 413: the response is cut off instead of looking complete.
        if (maxBytes > 0 && sent > maxBytes) throw new Error(`file exceeds the limit of ${maxBytes} bytes`);
        yield chunk as Buffer;
      }
    } catch (err) {
      // A stream-like kernel file (/proc/kmsg) has nothing more for now: that is its end.
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    }
  }
  if (gzip) await pipeline(body, createGzip(), res as NodeJS.WritableStream);
  else await pipeline(body, res as NodeJS.WritableStream);
}
