import { native } from "../native.js";

/** The namespace E2B keeps file metadata in. */
export const E2B_XATTR_PREFIX = "user.e2b.";

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeStrict(b: Buffer | string): string | undefined {
  try {
    return typeof b === "string" ? utf8.decode(Buffer.from(b, "latin1")) : utf8.decode(b);
  } catch {
    return undefined;
  }
}

/** Raw attribute names of a path (follows symlinks); names are bytes as latin1. */
export function listXattr(path: string): string[] {
  return native().listXattr(path);
}

export function getXattr(path: string, name: string): Buffer {
  return native().getXattr(path, name);
}

export function setXattr(path: string, name: string, value: Buffer): void {
  native().setXattr(path, name, value);
}

export function removeXattr(path: string, name: string): void {
  native().removeXattr(path, name);
}

/**
 * The user.e2b.* attributes of a path, prefix stripped. Entries that are not
 * valid UTF-8 are skipped; unsupported filesystems and read errors give {}.
 */
export function readE2bMetadata(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = listXattr(path);
  } catch {
    return out;
  }
  for (const raw of names) {
    const name = decodeStrict(raw);
    if (name === undefined || !name.startsWith(E2B_XATTR_PREFIX)) continue;
    try {
      const value = decodeStrict(getXattr(path, raw));
      if (value !== undefined) out[name.slice(E2B_XATTR_PREFIX.length)] = value;
    } catch {
      /* vanished or unreadable: skipped, as envd does */
    }
  }
  return out;
}

function isIgnorable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOTSUP" || code === "EOPNOTSUPP";
}

/**
 * Makes the user.e2b.* attributes of `path` exactly `meta`: removes every other
 * user.e2b.* key, then sets the given ones. ENOTSUP is ignored (as in E2B);
 * other errors, ENOSPC and EDQUOT among them, are thrown.
 */
export function replaceE2bMetadata(path: string, meta: Record<string, string>): void {
  let names: string[];
  try {
    names = listXattr(path);
  } catch (err) {
    if (isIgnorable(err)) return;
    throw err;
  }
  try {
    for (const raw of names) {
      if (!raw.startsWith(E2B_XATTR_PREFIX)) continue;
      const key = decodeStrict(raw.slice(E2B_XATTR_PREFIX.length));
      if (key !== undefined && Object.hasOwn(meta, key)) continue;
      removeXattr(path, raw);
    }
    for (const [key, value] of Object.entries(meta)) {
      setXattr(path, Buffer.from(E2B_XATTR_PREFIX + key, "utf8").toString("latin1"), Buffer.from(value, "utf8"));
    }
  } catch (err) {
    if (isIgnorable(err)) return;
    throw err;
  }
}
