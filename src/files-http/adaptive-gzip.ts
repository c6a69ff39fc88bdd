import { createGzip, deflateRawSync, type Gzip } from "node:zlib";
import type { FileHandle } from "node:fs/promises";

/** Bytes from the start of the file that decide the level. */
const SAMPLE_BYTES = 16 * 1024;
/** Output at or above this share of the input counts as not compressing. */
const INCOMPRESSIBLE_RATIO = 0.9;

/**
 * The gzip level for a download: 1 when the file's first 16 KiB compress by at
 * least 10%, else 0, meaning "not worth compressing" (the caller sends it
 * uncompressed when the client accepts identity, or as stored deflate blocks,
 * still gzip for every client, when it does not). Level 1 is several times
 * faster than zlib's default 6 on text for a few percent of size; on data that
 * does not compress (archives, images, binaries) any level above 0 runs at
 * ~50 MB/s here for nothing.
 *
 * Why it matters: Node's fetch (undici, which the e2b SDK uses) asks for gzip on
 * every request, so every SDK download used to be compressed at ~45 MB/s
 * (bench/NOTES.md).
 */
export async function gzipLevelFor(handle: FileHandle, size: number): Promise<number> {
  const n = Math.min(size, SAMPLE_BYTES);
  if (n < 64) return 1;
  const sample = Buffer.allocUnsafe(n);
  const { bytesRead } = await handle.read(sample, 0, n, 0);
  if (bytesRead < 64) return 1;
  const packed = deflateRawSync(sample.subarray(0, bytesRead), { level: 1 }).length;
  return packed >= bytesRead * INCOMPRESSIBLE_RATIO ? 0 : 1;
}

/** A gzip encoder at `level` (see {@link gzipLevelFor}) with `chunkSize` output chunks. */
export function createDownloadGzip(level: number, chunkSize: number): Gzip {
  return createGzip({ level, chunkSize });
}
