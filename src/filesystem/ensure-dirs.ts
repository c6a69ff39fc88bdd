import { statSync } from "node:fs";
import { posix } from "node:path";
import { ConnectError } from "@connectrpc/connect";
import type { DaemonContext } from "../daemon-context.js";
import { errnoCode, goErrorText } from "./go-text.js";
import { withPath } from "./fd-ops.js";
import { openParent, type ParentEntry } from "./resolve.js";
import type { FileAccess } from "./access.js";

/** Every prefix of an absolute directory path, "/" first. */
function subpaths(path: string): string[] {
  const out: string[] = [];
  let p = posix.resolve(path);
  for (;;) {
    out.unshift(p);
    if (p === "/") break;
    p = posix.dirname(p);
  }
  return out;
}

/**
 * envd's message for a failed EnsureDirs of `dir`. The walk reports what failed, not where, so the
 * first component that is missing or not a directory is looked up for the text only (nothing acts
 * on what this finds).
 */
function ensureDirsError(err: unknown, dir: string): Error {
  if (err instanceof ConnectError) return err;
  if (errnoCode(err) === "ENOTDIR" || errnoCode(err) === "ENOENT" || errnoCode(err) === "EACCES" || errnoCode(err) === "ENOSPC" || errnoCode(err) === "EROFS" || errnoCode(err) === "EDQUOT") {
    for (const sub of subpaths(dir)) {
      let isDir: boolean;
      try {
        isDir = statSync(sub).isDirectory();
      } catch (statErr) {
        if (errnoCode(statErr) !== "ENOENT") return new Error(`failed to stat directory: ${goErrorText(statErr)}`);
        return new Error(`failed to create directory: ${goErrorText(withPath(err as Error, "mkdir", sub))}`);
      }
      if (!isDir) return new Error(`path is a file: ${sub}`);
    }
  }
  return new Error(`failed to create directory: ${goErrorText(withPath(err as Error, "mkdir", dir))}`);
}

/**
 * E2B's EnsureDirs for the directory holding `path`, on descriptors: resolves `path`'s parent once
 * (beneath the root jail when one is set), creating each missing directory with mode 0755 (before
 * umask) owned by uid:gid from birth (created as root, opened without following symlinks, checked to
 * be the directory just made, fchown'ed on that descriptor). Existing directories are left as they
 * are. Returns the parent's descriptor and the final name (not followed), which the caller closes.
 * Errors carry envd's messages; a jail escape is the resolver's permission_denied ConnectError.
 */
export function ensureParentDirs(ctx: DaemonContext, path: string, uid: number, gid: number, access?: FileAccess): ParentEntry {
  try {
    // With permission enforcement the resolver runs as the user: the kernel decides each mkdirat.
    const open = () => openParent(ctx, path, { follow: false, create: { uid, gid } });
    return access ? access.runSync(open) : open();
  } catch (err) {
    throw ensureDirsError(err, posix.dirname(path));
  }
}
