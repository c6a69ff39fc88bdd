import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { LimitError } from "./limits.js";

/** A cgroup file's text, or undefined when it is missing or unreadable. */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return undefined;
  }
}

/** A cgroup file holding one number; undefined when missing, "max" or unparsable. */
export function readNumber(path: string): number | undefined {
  const t = readText(path)?.trim();
  if (t === undefined || !/^\d+$/.test(t)) return undefined;
  return Number(t);
}

/** Writes a control file; a failure becomes a LimitError naming the file. */
export function writeControl(path: string, value: string, what: string): void {
  try {
    writeFileSync(path, value);
  } catch (err) {
    throw new LimitError(`cannot set ${what}: writing '${value}' to ${path}: ${(err as Error).message}`);
  }
}

/** The pids listed in a cgroup.procs file. */
export function readPids(path: string): number[] {
  const t = readText(path);
  if (!t) return [];
  const out: number[] = [];
  for (const line of t.split("\n")) if (line) out.push(Number(line));
  return out;
}

/** SIGKILLs each pid, ignoring those already gone. */
export function killPids(pids: number[]): void {
  for (const pid of pids) {
    if (pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, 9);
    } catch {
      /* gone */
    }
  }
}

/** rmdir with retries: a killed task leaves its cgroup a moment after it died. */
export async function removeDirs(dirs: string[], procsFiles: string[], attempts = 50): Promise<void> {
  let left = [...dirs];
  for (let i = 0; i < attempts && left.length; i++) {
    if (i > 0) {
      for (const f of procsFiles) killPids(readPids(f));
      await new Promise((r) => setTimeout(r, Math.min(10 * i, 100)));
    }
    left = left.filter((d) => {
      try {
        rmdirSync(d);
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code !== "ENOENT";
      }
    });
  }
}

/** The shared cgroup, next to the runs' ones, where what a plain run left running lives on. */
export const LEFTOVER = "leftover";

/**
 * Moves every process of each run directory into <its parent>/leftover and removes the
 * directory; retries while processes fork during the move or the kernel still lists exiting ones.
 */
export async function releaseDirs(dirs: string[], attempts = 50): Promise<void> {
  for (const dir of dirs) {
    const target = join(dirname(dir), LEFTOVER, "cgroup.procs");
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Math.min(10 * i, 100)));
      const pids = readPids(join(dir, "cgroup.procs"));
      if (pids.length) {
        try {
          mkdirSync(dirname(target), { recursive: true });
        } catch {
          /* the moves below fail and are retried */
        }
        for (const pid of pids) {
          try {
            writeFileSync(target, String(pid));
          } catch {
            /* exited meanwhile */
          }
        }
      }
      try {
        rmdirSync(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
      }
    }
  }
}

/**
 * The directory for this daemon's run cgroups: <top>/<daemon pid>, so daemons
 * sharing a hierarchy never touch each other's cgroups. Directories of daemons
 * that are gone (killed before they could clean up) are removed on the way.
 */
export function daemonDir(top: string): string {
  // In a pid namespace of our own (a container without a cgroup namespace, a test), our pid is
  // not unique on the hierarchy (several daemons are pid 1) and /proc does not show the other
  // daemons, which would look gone: a name unique to our namespace, and no clean-up.
  const nested = nestedPidNamespace();
  if (nested) return join(top, `pidns${nested}-${process.pid}`);
  let names: string[] = [];
  try {
    names = readdirSync(top, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    /* not there yet */
  }
  for (const n of names) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid || existsSync(`/proc/${n}`)) continue;
    removeEmptyCgroups(join(top, n));
  }
  return join(top, String(process.pid));
}

/**
 * Removes a gone daemon's directory: each run directory that is empty, then the directory
 * itself if nothing is left. A run directory that still holds tasks (a command that outlived
 * its daemon) stays, and its tasks are left alone: a later daemon may adopt them.
 */
function removeEmptyCgroups(dir: string): void {
  let runs: string[] = [];
  try {
    runs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return;
  }
  // One at a time: a busy one must not keep the empty ones after it.
  for (const run of runs) {
    try {
      rmdirSync(join(dir, run));
    } catch {
      /* still populated: leave it */
    }
  }
  try {
    rmdirSync(dir);
  } catch {
    /* still populated: leave it */
  }
}

/** The inode of our pid namespace when it is not the initial one (the kernel's PROC_PID_INIT_INO), else undefined. */
function nestedPidNamespace(): string | undefined {
  try {
    const inode = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1];
    return inode && inode !== "4026531836" ? inode : undefined;
  } catch {
    return undefined;
  }
}
