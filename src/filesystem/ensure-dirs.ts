import { chownSync, mkdirSync, statSync } from "node:fs";
import { posix } from "node:path";

/**
 * Creates every missing directory of `path` (mode 0755 under the umask) and chowns
 * each one it created to uid:gid, as envd's EnsureDirs does for MakeDir, Move and
 * uploads. Throws Error("path is a file: <p>") when a component is not a directory.
 */
export function ensureDirs(path: string, uid: number, gid: number): void {
  const chain: string[] = [];
  for (let p = posix.resolve(path); p !== "/"; p = posix.dirname(p)) chain.push(p);
  for (const dir of chain.reverse()) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(dir).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`failed to stat directory: ${(err as Error).message}`);
    }
    if (isDir === false) throw new Error(`path is a file: ${dir}`);
    if (isDir) continue;
    try {
      mkdirSync(dir, 0o755);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new Error(`failed to create directory: ${(err as Error).message}`);
    }
    // Also when another process won the race: it may not have chowned yet.
    chownSync(dir, uid, gid);
  }
}
