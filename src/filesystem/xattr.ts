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

/** The four attribute calls on one target: a path (followed) or an open descriptor. */
interface XattrTarget {
  list(): string[];
  get(name: string): Buffer;
  set(name: string, value: Buffer): void;
  remove(name: string): void;
}

function onPath(path: string): XattrTarget {
  return { list: () => listXattr(path), get: (n) => getXattr(path, n), set: (n, v) => setXattr(path, n, v), remove: (n) => removeXattr(path, n) };
}

function onFd(fd: number): XattrTarget {
  const n = native();
  return { list: () => n.flistXattr(fd), get: (name) => n.fgetXattr(fd, name), set: (name, v) => n.fsetXattr(fd, name, v), remove: (name) => n.fremoveXattr(fd, name) };
}

function readE2b(t: XattrTarget): Record<string, string> {
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = t.list();
  } catch {
    return out;
  }
  for (const raw of names) {
    const name = decodeStrict(raw);
    if (name === undefined || !name.startsWith(E2B_XATTR_PREFIX)) continue;
    try {
      const value = decodeStrict(t.get(raw));
      if (value !== undefined) out[name.slice(E2B_XATTR_PREFIX.length)] = value;
    } catch {
      /* vanished or unreadable: skipped, as envd does */
    }
  }
  return out;
}

/**
 * The user.e2b.* attributes of a path, prefix stripped. Entries that are not
 * valid UTF-8 are skipped; unsupported filesystems and read errors give {}.
 */
export function readE2bMetadata(path: string): Record<string, string> {
  return readE2b(onPath(path));
}

/** {@link readE2bMetadata} of an open file (not an O_PATH descriptor). */
export function readE2bMetadataFd(fd: number): Record<string, string> {
  return readE2b(onFd(fd));
}

function isIgnorable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOTSUP" || code === "EOPNOTSUPP";
}

function replaceE2b(t: XattrTarget, meta: Record<string, string>): void {
  let names: string[];
  try {
    names = t.list();
  } catch (err) {
    if (isIgnorable(err)) return;
    throw err;
  }
  try {
    for (const raw of names) {
      if (!raw.startsWith(E2B_XATTR_PREFIX)) continue;
      const key = decodeStrict(raw.slice(E2B_XATTR_PREFIX.length));
      if (key !== undefined && Object.hasOwn(meta, key)) continue;
      t.remove(raw);
    }
    for (const [key, value] of Object.entries(meta)) {
      t.set(Buffer.from(E2B_XATTR_PREFIX + key, "utf8").toString("latin1"), Buffer.from(value, "utf8"));
    }
  } catch (err) {
    if (isIgnorable(err)) return;
    throw err;
  }
}

/**
 * Makes the user.e2b.* attributes of `path` exactly `meta`: removes every other
 * user.e2b.* key, then sets the given ones. ENOTSUP is ignored (as in E2B);
 * other errors, ENOSPC and EDQUOT among them, are thrown.
 */
export function replaceE2bMetadata(path: string, meta: Record<string, string>): void {
  replaceE2b(onPath(path), meta);
}

/** {@link replaceE2bMetadata} on an open file: the file this operation opened, whatever its name says now. */
export function replaceE2bMetadataFd(fd: number, meta: Record<string, string>): void {
  replaceE2b(onFd(fd), meta);
}

/**
 * Copies the extended attributes of one open file to another, except E2B metadata and file
 * capabilities (an upload must not carry a capability over to new content). Best effort: an
 * attribute that cannot be set is passed to `skipped`.
 */
export function copyForeignXattrsFd(from: number, to: number, skipped: (name: string, err: unknown) => void): void {
  const src = onFd(from);
  const dst = onFd(to);
  let names: string[];
  try {
    names = src.list();
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(E2B_XATTR_PREFIX) || name === "security.capability") continue;
    try {
      dst.set(name, src.get(name));
    } catch (err) {
      skipped(name, err);
    }
  }
}
