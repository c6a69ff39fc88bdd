import { randomBytes } from "node:crypto";
import { posix } from "node:path";

const NAME_MAX = 255;
const RANDOM_HEX = 12;
const TEMP_SUFFIX_BYTES = ".envd-replace.".length + RANDOM_HEX + ".tmp".length + 1;
const TEMP_NAME = /^\..*\.envd-(upload|replace)\.[0-9a-f]{12}\.tmp$/s;
const REPLACE_NAME = /^\..*\.envd-replace\.[0-9a-f]{12}\.tmp$/s;

/** Random bytes for this many names are drawn at once: one randomBytes call per upload cost ~9 µs. */
const POOL_NAMES = 256;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function randomHex(): string {
  if (poolOffset >= pool.length) {
    pool = randomBytes((RANDOM_HEX / 2) * POOL_NAMES);
    poolOffset = 0;
  }
  const hex = pool.toString("hex", poolOffset, poolOffset + RANDOM_HEX / 2);
  poolOffset += RANDOM_HEX / 2;
  return hex;
}

/**
 * `.<base>.envd-upload.<random>.tmp` beside the target (`.envd-replace.` when it will replace an
 * existing file), kept within NAME_MAX bytes. `target` is a path or a bare name.
 */
export function uploadTempPath(target: string, replacing = false): string {
  let base = posix.basename(target);
  while (Buffer.byteLength(base) > NAME_MAX - TEMP_SUFFIX_BYTES) base = base.slice(0, -1);
  const name = `.${base}.envd-${replacing ? "replace" : "upload"}.${randomHex()}.tmp`;
  return target.includes("/") ? posix.join(posix.dirname(target), name) : name;
}

/**
 * Whether a temporary file name says it replaces an existing file: its rename over the target is
 * no creation to a watcher (E2B's envd rewrites an existing file in place, with no CREATE).
 */
export function isReplaceTempName(name: string): boolean {
  return REPLACE_NAME.test(name);
}

/**
 * Whether a file name is one of our upload temporaries. Watchers hide them: an
 * atomic upload should look to a watcher like E2B's in-place write of the target.
 */
export function isUploadTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}
