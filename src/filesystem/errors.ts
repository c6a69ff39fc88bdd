import { Code } from "@connectrpc/connect";

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

/**
 * The code for a filesystem call that failed unexpectedly: `internal`, as envd says, except
 * when the daemon ran out of descriptors (EMFILE, ENFILE), which is load a client can back
 * off from: `resource_exhausted`, as process starts and watchers report it.
 */
export function fsFailureCode(err: unknown): Code {
  const errno = (err as NodeJS.ErrnoException)?.code;
  return errno === "EMFILE" || errno === "ENFILE" ? Code.ResourceExhausted : Code.Internal;
}
