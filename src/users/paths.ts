import { posix } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UserAccount } from "./passwd.js";

/**
 * Resolves a client path as E2B's ExpandAndResolve does (docs/protocol.md, "Path resolution"):
 * "" → the default workdir or the user's home; "~" and "~/x" → under home;
 * "~other" → invalid_argument; relative → joined onto home; then cleaned.
 * Symlinks are not resolved.
 */
export function expandAndResolve(path: string, user: UserAccount, defaultWorkdir: string | undefined): string {
  if (path === "") return posix.resolve(defaultWorkdir || user.home);
  let p = path;
  if (p.startsWith("~")) {
    if (p === "~") p = user.home;
    else if (p.startsWith("~/")) p = posix.join(user.home, p.slice(2));
    else throw new ConnectError(`failed to expand path '${path}': cannot expand user-specific home dir`, Code.InvalidArgument);
  }
  if (!posix.isAbsolute(p)) p = posix.join(user.home, p);
  return posix.resolve(p);
}
