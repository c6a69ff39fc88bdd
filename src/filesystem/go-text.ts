/**
 * Go's wording for the texts E2B's envd puts into its /files error messages, so that
 * clients matching on them see the same strings.
 */

/** Go's strerror texts where libuv's differ or are missing. */
const GO_ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "file name too long",
  EROFS: "read-only file system",
  EEXIST: "file exists",
  EIO: "input/output error",
  EBUSY: "device or resource busy",
  EINVAL: "invalid argument",
  ETXTBSY: "text file busy",
  EXDEV: "invalid cross-device link",
  ENOTEMPTY: "directory not empty",
  EMLINK: "too many links",
  ENOTSUP: "operation not supported",
  EOPNOTSUPP: "operation not supported",
  E2BIG: "argument list too long",
  ENODATA: "no data available",
};

/** The errno code of an error thrown by node:fs or the native addon. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** True for "the disk (or quota) is full". */
export function isNoSpace(err: unknown): boolean {
  const code = errnoCode(err);
  return code === "ENOSPC" || code === "EDQUOT";
}

/** Go's os.PathError text: "<op> <path>: <strerror>"; other errors keep their message. */
export function goErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const code = errnoCode(err);
  if (!code || !/^E[A-Z0-9]+$/.test(code)) return e?.message ?? String(err);
  const fromNode = /^E[A-Z0-9]+: (.*?)(?:, .*)?$/.exec(e.message ?? "")?.[1];
  const text = GO_ERRNO_TEXT[code] ?? fromNode ?? code;
  if (e.syscall && e.path) return `${e.syscall} ${e.path}: ${text}`;
  return text;
}

/** Go's strconv.Quote for the strings envd quotes with %q. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (c === 0x07) out += "\\a";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x0b) out += "\\v";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else if (c >= 0x80 && c < 0xa0) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}
