import { closeSync, constants, openSync, readlinkSync } from "node:fs";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Logger } from "../log.js";
import { fdOps, statAt } from "../filesystem/fd-ops.js";
import { isUploadTempName } from "../filesystem/upload-temp-name.js";

/** Copy temporaries as earlier versions named them (they now use the upload names). */
const OLD_COPY_TEMP = /^\.envd-copy-[0-9a-f]{12}$/;
const COMPOSE_TEMP = /\.e2b-compose\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/** Whether a name is one of the daemon's temporaries (upload, copy or compose). */
export function isDaemonTempName(name: string): boolean {
  return isUploadTempName(name) || COMPOSE_TEMP.test(name) || OLD_COPY_TEMP.test(name);
}

/** Opens a recorded directory, only if it is still a directory at that very path (no symlink on the way). */
function openRecorded(dir: Buffer): number | undefined {
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    if (readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" }).equals(dir)) return fd;
  } catch {
    /* not checkable: skipped */
  }
  closeSync(fd);
  return undefined;
}

/**
 * Removes the daemon's temporaries (by name) last changed before cutoffMs from dirs. Only
 * regular files and symlinks are removed, and only in a directory that is still where it was
 * recorded (not swapped for a symlink since); every step after the open is on its descriptor.
 * Returns how many were removed.
 */
export async function sweepTempFiles(dirs: Buffer[], cutoffMs: number, log: Logger): Promise<number> {
  let removed = 0;
  for (const dir of dirs) {
    // One directory per turn: a long list does not hold requests up.
    await nextTurn();
    const fd = openRecorded(dir);
    if (fd === undefined) continue;
    try {
      for (const name of fdOps().readDirFd(fd)) {
        if (!isDaemonTempName(name.toString("latin1"))) continue;
        try {
          const st = statAt(fd, name);
          if (!st || !(st.isFile() || st.isSymbolicLink()) || st.ctimeMs >= cutoffMs) continue;
          fdOps().unlinkAt(fd, name, 0);
          removed++;
        } catch (err) {
          log.debug({ err, dir: dir.toString(), name: name.toString() }, "cannot remove a stale temporary file");
        }
      }
    } catch (err) {
      log.debug({ err, dir: dir.toString() }, "cannot list a directory of temporary files");
    } finally {
      closeSync(fd);
    }
  }
  return removed;
}
