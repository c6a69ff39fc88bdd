import { statSync } from "node:fs";
import { chown, mkdir, stat } from "node:fs/promises";
import { posix } from "node:path";
import { errnoCode, goErrorText } from "./go-text.js";

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
 * E2B's EnsureDirs: creates each missing directory of `path` with mode 0755 (before
 * umask) and chowns each one it created to uid:gid. Existing directories are left as
 * they are; a component that is not a directory fails with "path is a file: <p>".
 * Errors carry envd's messages.
 */
export async function ensureDirs(path: string, uid: number, gid: number): Promise<void> {
  // Almost always the directory is there already: one stat instead of one per component.
  // (If the whole path is a directory, so is every prefix: stat follows symlinks as the walk does.)
  // Synchronous, like the uploads' lstat: microseconds locally against a thread-pool round trip.
  try {
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) return;
  } catch {
    /* a component is not a directory, or not searchable: the walk below says which */
  }
  for (const sub of subpaths(path)) {
    let isDir: boolean;
    try {
      isDir = (await stat(sub)).isDirectory();
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw new Error(`failed to stat directory: ${goErrorText(err)}`);
      try {
        await mkdir(sub, 0o755);
      } catch (mkErr) {
        if (errnoCode(mkErr) !== "EEXIST") throw new Error(`failed to create directory: ${goErrorText(mkErr)}`);
      }
      // Chown even when a concurrent creator won the race: it may not have chowned yet.
      try {
        await chown(sub, uid, gid);
      } catch (chErr) {
        throw new Error(`failed to chown directory: ${goErrorText(chErr)}`);
      }
      continue;
    }
    if (!isDir) throw new Error(`path is a file: ${sub}`);
  }
}
