import { Code } from "@connectrpc/connect";

/**
 * The code for a call that failed on an unexpected OS error: `internal`, as envd says, except
 * when the daemon ran out of descriptors (EMFILE, ENFILE), which is load a client can back off
 * from: `resource_exhausted`.
 */
export function failureCode(err: unknown): Code {
  const errno = (err as NodeJS.ErrnoException)?.code;
  return errno === "EMFILE" || errno === "ENFILE" ? Code.ResourceExhausted : Code.Internal;
}
