/** strerror text out of Node's "ENOENT: no such file or directory, lstat '/x'" message. */
function strerror(err: unknown): string {
  const msg = (err as Error)?.message ?? String(err);
  const m = /^[A-Z0-9_]+: ([^,]+)(,|$)/.exec(msg);
  return m ? m[1]! : msg;
}

/**
 * The text Go's *fs.PathError prints ("lstat /x: no such file or directory"), which
 * envd puts in its error messages; clients sometimes match on it.
 */
export function goPathError(op: string, path: string, err: unknown): string {
  return `${op} ${path}: ${strerror(err)}`;
}
