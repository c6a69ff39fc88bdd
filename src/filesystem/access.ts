import { close } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DaemonContext } from "../daemon-context.js";
import { native } from "../native.js";
import type { UserAccount } from "../users/passwd.js";
import { errnoCode } from "./go-text.js";

/** Permission bits asked for, as in access(2). */
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;
const F_OK = 0;
const AT_SYMLINK_NOFOLLOW = 0x100;

const closeFd = promisify(close);

/** native/src/fsuser.c: one filesystem call on a pool thread with the user's fsuid, fsgid and groups. */
type FsAs = (uid: number, gid: number, groups: number[], op: string, path: string | Buffer, path2: string | Buffer | null, a: number, b: number, c: number) => Promise<number>;
type FsAsSync = (uid: number, gid: number, groups: number[], op: string, path: string | Buffer, path2: string | Buffer | null, a: number, b: number, c: number) => number;

const VERBS: Record<number, string> = { [F_OK]: "reach", [R_OK]: "read", [W_OK]: "write", [X_OK]: "search", [R_OK | X_OK]: "list", [W_OK | X_OK]: "modify", [R_OK | W_OK | X_OK]: "modify" };

function isRefusal(err: unknown): boolean {
  const code = errnoCode(err);
  return code === "EACCES" || code === "EPERM";
}

/**
 * What the requesting user may do with files, decided by the kernel: with
 * --enforce-file-permissions (and a user other than root) every check and every
 * operation here runs as that user (its fsuid, fsgid and supplementary groups, on a
 * pool thread), so search permission along the path as resolved, the sticky bit,
 * ACLs, the owner rules of chmod and chown, procfs' own rules and LSMs all apply as
 * to the user's own processes. Writes into procfs, sysfs and the like are refused
 * to users other than root (/proc/self would be the daemon). Without enforcement
 * every check passes and operations run as the daemon, as in E2B where the daemon
 * acts as root for everyone.
 */
export class FileAccess {
  readonly enforced: boolean;

  constructor(
    ctx: DaemonContext,
    readonly user: UserAccount,
  ) {
    this.enforced = ctx.config.enforceFilePermissions && user.uid !== 0;
  }

  /** Checks for `user` whatever the daemon's configuration says (callers decide when). */
  static enforcedFor(user: UserAccount): FileAccess {
    return new FileAccess({ config: { enforceFilePermissions: true } } as DaemonContext, user);
  }

  private denied(verb: string, path: string | Buffer, err?: unknown): ConnectError {
    const why = err ? `: ${errnoCode(err) === "EPERM" ? "operation not permitted" : "permission denied"}` : "";
    return new ConnectError(`permission denied: user '${this.user.name}' cannot ${verb} '${String(path)}'${why}`, Code.PermissionDenied);
  }

  private asUser(op: string, path: string | Buffer, path2: string | Buffer | null = null, a = 0, b = 0, c = 0): Promise<number> {
    const u = this.user;
    return (native().fsAs as FsAs)(u.uid, u.gid, u.groups, op, path, path2, a, b, c);
  }

  /** faccessat as the user: true when allowed, false when refused; a missing path counts as allowed (the caller reports it). */
  private async may(path: string | Buffer, want: number, follow: boolean): Promise<boolean> {
    try {
      await this.asUser("access", path, null, want, follow ? 0 : AT_SYMLINK_NOFOLLOW);
      return true;
    } catch (err) {
      if (isRefusal(err)) return false;
      return true;
    }
  }

  /** The user can reach `path` (search permission on every directory the kernel resolves on the way) and has `want` on it. */
  async require(path: string | Buffer, want: number, follow = true): Promise<void> {
    if (!this.enforced) return;
    if (!(await this.may(path, want, follow))) throw this.denied(VERBS[want] ?? "access", path);
  }

  /**
   * The user has `want` on the very file or directory descriptor `fd` holds (asked through
   * /proc/self/fd, whatever its path names by now); `shown` names it in the refusal.
   */
  async requireOpened(fd: number, want: number, shown: string | Buffer): Promise<void> {
    if (!this.enforced) return;
    if (!(await this.may(`/proc/self/fd/${fd}`, want, true))) throw this.denied(VERBS[want] ?? "access", shown);
  }

  /** Every directory on the way to `path`, as the kernel resolves it, must be searchable. */
  async requireTraverse(path: string | Buffer): Promise<void> {
    if (!this.enforced) return;
    if (!(await this.may(path, F_OK, false))) throw this.denied("reach", path);
  }

  /** The user may create `path`: write and search on its nearest existing ancestor directory. */
  async requireCreate(path: string): Promise<void> {
    if (!this.enforced) return;
    let dir = posix.dirname(path);
    for (;;) {
      try {
        await this.asUser("access", dir, null, W_OK | X_OK, 0);
        return;
      } catch (err) {
        if (isRefusal(err)) throw this.denied("create entries in", dir);
        if (errnoCode(err) !== "ENOENT" || dir === "/") return;
        dir = posix.dirname(dir);
      }
    }
  }

  /**
   * The user may take `path` out of its directory as far as write and search on the
   * directory go. The sticky bit is the kernel's to decide when the removal itself runs
   * as the user (rename, unlink, rmdir below).
   */
  async requireRemove(path: string | Buffer): Promise<void> {
    if (!this.enforced) return;
    const p = typeof path === "string" ? path : path.toString("latin1");
    const parent = posix.dirname(p);
    if (!(await this.may(typeof path === "string" ? parent : Buffer.from(parent, "latin1"), W_OK | X_OK, true))) throw this.denied("remove entries from", parent);
  }

  /**
   * Whether a walk may descend into directory `abs` (read and search), asked of the kernel
   * synchronously: walkers call it where they stat the directory anyway.
   */
  canEnter(abs: string | Buffer): boolean {
    if (!this.enforced) return true;
    const u = this.user;
    try {
      (native().fsAsSync as FsAsSync)(u.uid, u.gid, u.groups, "access", abs, null, R_OK | X_OK, 0, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** {@link canEnter}, throwing permission_denied: for callers that open a directory on the spot. */
  requireEnter(abs: string | Buffer): void {
    if (!this.canEnter(abs)) throw this.denied("list", abs);
  }

  /**
   * Calls `fn` (synchronous) with the user's credentials on this thread when enforced, so
   * every syscall it makes (a resolver creating directories on the way) is the user's.
   */
  runSync<T>(fn: () => T): T {
    if (!this.enforced) return fn();
    const u = this.user;
    return (native().fsAsCall as (uid: number, gid: number, groups: number[], fn: () => T) => T)(u.uid, u.gid, u.groups, fn);
  }

  /** Runs `op` as the user when enforced; refusals become permission_denied naming `verb`. */
  private async run(verb: string, path: string | Buffer, op: string, path2: string | Buffer | null, a = 0, b = 0, c = 0): Promise<number> {
    try {
      return await this.asUser(op, path, path2, a, b, c);
    } catch (err) {
      if (isRefusal(err)) throw this.denied(verb, path, err);
      throw err;
    }
  }

  /**
   * rename(2) (renameat2 `flags`) as the user: the kernel applies the sticky bit of both
   * directories. `shown` names the source in a refusal (for /proc/self/fd/N/name paths).
   */
  async rename(from: string | Buffer, to: string | Buffer, flags = 0, shown: string | Buffer = from): Promise<void> {
    try {
      await this.asUser("rename", from, to, flags);
    } catch (err) {
      if (isRefusal(err)) throw this.denied("move", shown, err);
      throw err;
    }
  }

  /** unlink(2) as the user. */
  async unlink(path: string | Buffer): Promise<void> {
    await this.run("remove", path, "unlink", null);
  }

  /** rmdir(2) as the user. */
  async rmdir(path: string | Buffer): Promise<void> {
    await this.run("remove", path, "rmdir", null);
  }

  /** chmod(2) (following a final symlink) as the user: only its owner may. */
  async chmod(path: string | Buffer, mode: number): Promise<void> {
    await this.run("change the mode of", path, "chmod", null, mode);
  }

  /** chown(2) (lchown unless `follow`) as the user: its owner may change the group to one of its own groups. */
  async chown(path: string | Buffer, uid: number, gid: number, follow: boolean): Promise<void> {
    await this.run("change the owner of", path, "chown", null, uid, gid, follow ? 0 : AT_SYMLINK_NOFOLLOW);
  }

  /**
   * open(2) as the user, as a FileHandle. The kernel decides on the file actually opened;
   * the daemon then reopens that very file through /proc/self/fd (no path is looked up
   * again), since Node makes FileHandles only by opening.
   */
  async open(path: string | Buffer, flags: number, mode = 0o666): Promise<FileHandle> {
    const fd = await this.run(flags & 3 ? "write" : "read", path, "open", null, flags, mode);
    try {
      return await open(`/proc/self/fd/${fd}`, flags & ~(0o100 /* O_CREAT */ | 0o200 /* O_EXCL */ | 0o1000 /* O_TRUNC */ | 0o400000 /* O_NOFOLLOW */));
    } finally {
      await closeFd(fd).catch(() => {});
    }
  }
}
