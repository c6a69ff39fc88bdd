import { lstatSync, readlinkSync, realpathSync } from "node:fs";
import { posix } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DaemonContext } from "../daemon-context.js";
import type { UserAccount } from "../users/passwd.js";
import { expandAndResolve } from "../users/paths.js";

/** Symlinks followed in one resolution before giving up, as Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;

function escapeError(path: string): ConnectError {
  return new ConnectError(`path '${path}' is outside the file root`, Code.PermissionDenied);
}

function isBeneath(root: string, path: string): boolean {
  return path === root || path.startsWith(root === "/" ? "/" : root + "/");
}

const realRoots = new Map<string, string>();
function realRoot(root: string): string {
  let real = realRoots.get(root);
  if (real === undefined) {
    try {
      real = realpathSync(root);
    } catch {
      real = posix.resolve(root);
    }
    realRoots.set(root, real);
  }
  return real;
}

/**
 * Resolves `absPath` component by component beneath `root`, following symlinks
 * (all but the last unless `followFinal`), and returns the resolved path.
 * Throws permission_denied as soon as `..` or a symlink would leave the root, the
 * way openat2(RESOLVE_IN_ROOT) refuses escapes. Missing components end the walk:
 * the rest is lexical and, being normalised, cannot climb out.
 */
export function resolveBeneath(root: string, absPath: string, followFinal: boolean): string {
  const top = realRoot(root);
  const lexical = posix.resolve(absPath);
  const rootLexical = posix.resolve(root);
  let rel: string;
  if (isBeneath(top, lexical)) rel = posix.relative(top, lexical);
  else if (isBeneath(rootLexical, lexical)) rel = posix.relative(rootLexical, lexical);
  else throw escapeError(absPath);

  const parts = rel.split("/").filter((p) => p !== "" && p !== ".");
  let current = top;
  let hops = 0;
  while (parts.length > 0) {
    const name = parts.shift()!;
    if (name === ".") continue;
    if (name === "..") {
      if (current === top) throw escapeError(absPath);
      current = posix.dirname(current);
      continue;
    }
    const next = posix.join(current, name);
    let isLink = false;
    try {
      isLink = lstatSync(next).isSymbolicLink();
    } catch {
      const rest = posix.join(next, ...parts);
      if (!isBeneath(top, posix.resolve(rest))) throw escapeError(absPath);
      return posix.resolve(rest);
    }
    if (isLink && (parts.length > 0 || followFinal)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new ConnectError(`too many levels of symbolic links in '${absPath}'`, Code.FailedPrecondition);
      const target = readlinkSync(next);
      if (posix.isAbsolute(target)) {
        if (!isBeneath(top, posix.resolve(target))) throw escapeError(absPath);
        parts.unshift(...posix.relative(top, posix.resolve(target)).split("/").filter(Boolean));
        current = top;
      } else {
        parts.unshift(...target.split("/").filter((p) => p !== ""));
      }
      continue;
    }
    current = next;
  }
  return current;
}

/**
 * Throws permission_denied when `absPath` leaves config.fsRoot, through `..` or
 * through symlinks; a no-op when no root is configured.
 */
export function checkBeneathRoot(ctx: DaemonContext, absPath: string, opts: { followFinal?: boolean } = {}): void {
  const root = ctx.config.fsRoot;
  if (!root) return;
  resolveBeneath(root, absPath, opts.followFinal ?? false);
}

/**
 * The absolute path a file request means: E2B's expansion (users/paths.ts), then
 * the root jail for every component but the last (callers that follow the final
 * component, like reads and writes, call checkBeneathRoot with followFinal too).
 */
export function resolveUserPath(ctx: DaemonContext, user: UserAccount, rawPath: string): string {
  if (rawPath.includes("\0")) throw new ConnectError("path contains a NUL byte", Code.InvalidArgument);
  const abs = expandAndResolve(rawPath, user, ctx.state.defaultWorkdir);
  checkBeneathRoot(ctx, abs);
  return abs;
}
