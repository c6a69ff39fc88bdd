import type { HttpRequest } from "../http/types.js";
import { E2B_XATTR_PREFIX } from "../filesystem/xattr.js";
import { goQuote } from "../filesystem/go-text.js";

/** Longest key: the xattr name limit (255) minus "user.e2b.". */
export const MAX_METADATA_KEY_BYTES = 255 - E2B_XATTR_PREFIX.length;
/** Budget for all names plus values on one file (one ext4 block). */
export const MAX_METADATA_TOTAL_BYTES = 4096;

const PREFIX = "x-metadata-";

/**
 * The `X-Metadata-<key>` request headers as envd reads them: keys lower-cased, the
 * first value of a repeated header wins, an empty key is dropped. Values are the raw
 * header bytes (latin1), so non-ASCII bytes stay visible to validation.
 */
export function metadataFromHeaders(req: HttpRequest): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!name.startsWith(PREFIX)) continue;
    const key = name.slice(PREFIX.length);
    if (key === "" || Object.hasOwn(out, key)) continue;
    out[key] = raw[i + 1]!;
  }
  return out;
}

function printableProblem(label: string, s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return `metadata ${label} contains non-printable-ASCII byte 0x${c.toString(16).padStart(2, "0")} at offset ${i}`;
  }
  return undefined;
}

/** envd's ValidateMetadata; the error text (to follow "invalid metadata: ") or undefined. */
export function metadataProblem(meta: Record<string, string>): string | undefined {
  let total = 0;
  for (const [k, v] of Object.entries(meta)) {
    if (k === "") return "metadata key must not be empty";
    if (Buffer.byteLength(k, "latin1") > MAX_METADATA_KEY_BYTES) return `metadata key ${goQuote(k)} exceeds ${MAX_METADATA_KEY_BYTES} bytes`;
    const problem = printableProblem("key", k) ?? printableProblem(`value for key ${goQuote(k)}`, v);
    if (problem) return problem;
    total += E2B_XATTR_PREFIX.length + k.length + v.length;
  }
  if (total > MAX_METADATA_TOTAL_BYTES) return `total metadata size ${total} exceeds ${MAX_METADATA_TOTAL_BYTES} bytes`;
  return undefined;
}

/** Go's json.Marshal of map[string]string sorts the keys; so does this. */
export function sortedMetadata(meta: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(meta).sort()) out[k] = meta[k]!;
  return out;
}
