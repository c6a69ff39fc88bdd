import { statSync, lstatSync, type Stats } from "node:fs";
import { posix } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DaemonContext } from "../daemon-context.js";
import type { UserAccount } from "../users/passwd.js";

/** Permission bits asked for, as in access(2). */
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

const VERBS: Record<number, string> = { [R_OK]: "read", [W_OK]: "write", [X_OK]: "search", [R_OK | X_OK]: "list", [W_OK | X_OK]: "modify", [R_OK | W_OK | X_OK]: "modify" };

function denied(user: UserAccount, verb: string, path: string | Buffer): ConnectError {
  return new ConnectError(`permission denied: user '${user.name}' cannot ${verb} '${String(path)}'`, Code.PermissionDenied);
}

function statOrUndefined(path: string | Buffer, follow: boolean): Stats | undefined {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The requesting user's file permissions, checked the way the kernel would for a
 * process running as that user (owner, then group, then other bits; root passes;
 * ACLs and capabilities are not considered). Active only with
 * --enforce-file-permissions; otherwise every check passes, as in E2B where the
 * daemon acts as root for everyone.
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

  /** True when the user's class (owner, group or other) has every bit of `want` in `st`. */
  allows(st: Stats, want: number): boolean {
    if (!this.enforced) return true;
    let bits: number;
    if (st.uid === this.user.uid) bits = (st.mode >> 6) & 7;
    else if (this.user.groups.includes(st.gid)) bits = (st.mode >> 3) & 7;
    else bits = st.mode & 7;
    return (bits & want) === want;
  }

  /** Every existing directory above `path` must be searchable (x). */
  requireTraverse(path: string | Buffer): void {
    if (!this.enforced) return;
    const p = typeof path === "string" ? path : path.toString("latin1");
    let dir = posix.dirname(p);
    const chain: string[] = [];
    for (;;) {
      chain.push(dir);
      if (dir === "/") break;
      dir = posix.dirname(dir);
    }
    for (const d of chain.reverse()) {
      const st = statOrUndefined(typeof path === "string" ? d : Buffer.from(d, "latin1"), true);
      if (!st) return;
      if (!this.allows(st, X_OK)) throw denied(this.user, "search", d);
    }
  }

  /** The user can reach `path` and has `want` on it (following a final symlink unless `follow` is false). */
  require(path: string | Buffer, want: number, follow = true): void {
    if (!this.enforced) return;
    this.requireTraverse(path);
    const st = statOrUndefined(path, follow);
    if (st && !this.allows(st, want)) throw denied(this.user, VERBS[want] ?? "access", path);
  }

  /** The user may create `path`: write and search on its nearest existing ancestor directory. */
  requireCreate(path: string): void {
    if (!this.enforced) return;
    let dir = posix.dirname(path);
    let st = statOrUndefined(dir, true);
    while (!st && dir !== "/") {
      dir = posix.dirname(dir);
      st = statOrUndefined(dir, true);
    }
    this.requireTraverse(posix.join(dir, "x"));
    if (st && !this.allows(st, W_OK | X_OK)) throw denied(this.user, "create entries in", dir);
  }

  /**
   * The user may unlink or rename `path` out of its directory: write and search on
   * the parent and, in a sticky directory, ownership of the entry or the directory.
   */
  requireRemove(path: string | Buffer): void {
    if (!this.enforced) return;
    this.requireTraverse(path);
    const p = typeof path === "string" ? path : path.toString("latin1");
    const parent = posix.dirname(p);
    const parentArg = typeof path === "string" ? parent : Buffer.from(parent, "latin1");
    const pst = statOrUndefined(parentArg, true);
    if (!pst) return;
    if (!this.allows(pst, W_OK | X_OK)) throw denied(this.user, "remove entries from", parent);
    if (pst.mode & 0o1000) {
      const st = statOrUndefined(path, false);
      if (st && st.uid !== this.user.uid && pst.uid !== this.user.uid) throw denied(this.user, "remove (sticky directory)", path);
    }
  }

  /** Only the owner (or root) may chmod, utime or set attributes. */
  requireOwner(path: string | Buffer, follow = true): void {
    if (!this.enforced) return;
    this.requireTraverse(path);
    const st = statOrUndefined(path, follow);
    if (st && st.uid !== this.user.uid) throw denied(this.user, "change the mode of", path);
  }

  /** Whether a walk may descend into directory `st` (read and search). */
  canEnter(st: Stats): boolean {
    return this.allows(st, R_OK | X_OK);
  }
}
