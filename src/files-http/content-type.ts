import type MimeTypes from "mime-types";

let mimeTypes: typeof MimeTypes | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads mime-db's table (~2,500 types) on first need instead of at start: it cost
 * ~4 ms and ~2 MiB of every daemon start (bench: cold start, RSS idle).
 * Call (and await) before {@link typeByExtension}.
 */
export function loadMimeTable(): Promise<void> {
  loading ??= import("mime-types").then((m) => {
    mimeTypes = ((m as { default?: typeof MimeTypes }).default ?? m) as typeof MimeTypes;
  });
  return loading;
}

/** Go's mime package built-in table; it wins over the system table, as with Go's globs2 loader. */
const GO_BUILTIN_TYPES: Record<string, string> = {
  ".avif": "image/avif",
  ".css": "text/css; charset=utf-8",
  ".gif": "image/gif",
  ".htm": "text/html; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".jpeg": "image/jpeg",
  ".jpg": "image/jpeg",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".mjs": "text/javascript; charset=utf-8",
  ".pdf": "application/pdf",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
  ".webp": "image/webp",
  ".xml": "text/xml; charset=utf-8",
};

/** Go's filepath.Ext: the suffix from the last dot of the last element (".bashrc" included). */
export function goExt(path: string): string {
  for (let i = path.length - 1; i >= 0 && path[i] !== "/"; i--) {
    if (path[i] === ".") return path.slice(i);
  }
  return "";
}

/**
 * Go's mime.TypeByExtension: the built-in table, then the system table (mime-db here),
 * with `charset=utf-8` added to text types as Go does; "" when unknown.
 * Needs {@link loadMimeTable} first.
 */
export function typeByExtension(ext: string): string {
  if (ext === "") return "";
  const builtin = GO_BUILTIN_TYPES[ext] ?? GO_BUILTIN_TYPES[ext.toLowerCase()];
  if (builtin) return builtin;
  if (!mimeTypes) throw new Error("typeByExtension before loadMimeTable()");
  const found = mimeTypes.lookup(ext);
  if (!found) return "";
  return found.startsWith("text/") ? `${found}; charset=utf-8` : found;
}
