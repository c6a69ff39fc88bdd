import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, constants, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, type Stats } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

/** Name of the state directory inside --run-dir. */
export const STATE_DIR_NAME = "envd-state";
const STATE_WRITE_TEMP = /^\..+\.[0-9a-f]{12}\.tmp$/;

/**
 * The state directory cannot be trusted (not ours, not a directory, unreadable).
 * What it may hold cannot be read, so a caller that must fail closed (the access
 * token) refuses to start on it; others serve without the state.
 */
export class UntrustedStateError extends Error {}

function euid(): number {
  return process.geteuid?.() ?? 0;
}

/** Why a file or directory of the state may not be trusted, or undefined when it may. */
function distrust(st: Stats, what: string, path: string): string | undefined {
  if (st.uid !== euid()) return `${what} ${path} is owned by uid ${st.uid}, not by the daemon (uid ${euid()})`;
  return undefined;
}

/**
 * <run-dir>/envd-state: what the daemon must remember across a crash, restart or upgrade
 * (what POST /init set, directories that may hold our temporaries, the previous daemon).
 * Owned by the daemon's user, mode 0700; files in it 0600, replaced atomically.
 */
export class StateDir {
  private constructor(readonly path: string) {}

  /**
   * Opens (creating it when missing) the state directory under runDir.
   * Returns undefined with a reason when it cannot be created at all (a daemon that is not
   * root, a read-only /run): nothing was ever stored there, so nothing is lost by going on.
   * Throws UntrustedStateError when it exists but cannot be trusted or read.
   */
  static open(runDir: string): { dir: StateDir; warning?: string } | { dir?: undefined; warning: string } {
    const path = join(runDir, STATE_DIR_NAME);
    let st: Stats | undefined;
    try {
      st = lstatSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new UntrustedStateError(`cannot inspect the state directory ${path}: ${(err as Error).message}`);
    }
    if (!st) {
      try {
        mkdirSync(runDir, { recursive: true, mode: 0o755 });
        mkdirSync(path, { mode: 0o700 });
        st = lstatSync(path);
      } catch (err) {
        return { warning: `cannot create the state directory ${path}: ${(err as Error).message}; what POST /init sets (the access token too) will not survive a restart` };
      }
    }
    if (!st.isDirectory()) throw new UntrustedStateError(`the state directory ${path} is not a directory`);
    const bad = distrust(st, "the state directory", path);
    if (bad) throw new UntrustedStateError(bad);
    let warning: string | undefined;
    if ((st.mode & 0o7777) !== 0o700) {
      try {
        chmodSync(path, 0o700);
      } catch (err) {
        throw new UntrustedStateError(`cannot make the state directory ${path} private: ${(err as Error).message}`);
      }
      warning = `the state directory ${path} had mode ${(st.mode & 0o7777).toString(8)}; it is now 0700`;
    }
    const dir = new StateDir(path);
    dir.removeStaleWrites();
    return { dir, warning };
  }

  /** Temporary files of writes a killed daemon left behind (the renamed ones are complete). */
  private removeStaleWrites(): void {
    let names: string[];
    try {
      names = readdirSync(this.path);
    } catch {
      return;
    }
    for (const n of names) {
      if (!STATE_WRITE_TEMP.test(n)) continue;
      try {
        unlinkSync(this.file(n));
      } catch {
        /* gone already, or left for the next start */
      }
    }
  }

  file(name: string): string {
    return join(this.path, name);
  }

  /**
   * A state file's bytes; undefined when it does not exist. Throws when it exists but
   * cannot be read or trusted (a symlink, not a regular file, owned by someone else).
   */
  read(name: string): Buffer | undefined {
    const path = this.file(name);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new Error(`cannot open ${path}: ${(err as Error).message}`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`${path} is not a regular file`);
      const bad = distrust(st, "the state file", path);
      if (bad) throw new Error(bad);
      return readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Replaces a state file atomically: a reader (the next daemon, after a kill -9 or a power
   * cut) finds the old content or the new, never a mix. Temp file, fsync, rename, fsync of
   * the directory.
   */
  async write(name: string, data: string | Buffer): Promise<void> {
    const path = this.file(name);
    const temp = this.file(`.${name}.${randomBytes(6).toString("hex")}.tmp`);
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let renamed = false;
    try {
      await handle.writeFile(data);
      await handle.sync();
      await handle.close();
      await rename(temp, path);
      renamed = true;
    } finally {
      await handle.close().catch(() => {});
      if (!renamed) await unlink(temp).catch(() => {});
    }
    await this.syncDir();
  }

  /** write(), synchronously: for the start, before the daemon serves. */
  writeSync(name: string, data: string | Buffer): void {
    const path = this.file(name);
    const temp = this.file(`.${name}.${randomBytes(6).toString("hex")}.tmp`);
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let renamed = false;
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
      renameSync(temp, path);
      renamed = true;
    } finally {
      closeSync(fd);
      if (!renamed) rmSync(temp, { force: true });
    }
    const dir = openSync(this.path, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** Removes a state file (absent is fine), durably. */
  async remove(name: string): Promise<void> {
    try {
      await unlink(this.file(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    await this.syncDir();
  }

  private async syncDir(): Promise<void> {
    const dir = await open(this.path, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
