import { stat } from "node:fs/promises";
import { posix } from "node:path";
import type { Stats } from "node:fs";
import type { UserAccount } from "../users/passwd.js";
import { errnoCode } from "./go-text.js";

const R = 4;
const W = 2;
const X = 1;

/** The rwx bits of `st` that apply to `user` (owner, then group, then other). */
function bitsFor(user: UserAccount, st: Stats): number {
  if (st.uid === user.uid) return (st.mode >> 6) & 7;
  if (user.groups.includes(st.gid)) return (st.mode >> 3) & 7;
  return st.mode & 7;
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR") return undefined;
    throw err;
  }
}

/** Every directory from "/" down to the parent of `path`. */
function ancestors(path: string): string[] {
  const out: string[] = [];
  let dir = posix.dirname(path);
  for (;;) {
    out.unshift(dir);
    if (dir === "/") break;
    dir = posix.dirname(dir);
  }
  return out;
}

/**
 * Whether `user` could do `access` on `path` by the mode bits alone (ACLs and
 * capabilities are not considered; root may do anything). A write to a missing path
 * needs write and search on the nearest existing directory, which is where the file
 * or its new parent directories would be created. Returns a refusal text or undefined.
 */
export async function permissionProblem(user: UserAccount, path: string, access: "read" | "write"): Promise<string | undefined> {
  if (user.uid === 0) return undefined;
  const refuse = `permission denied: user '${user.name}' cannot ${access} '${path}'`;
  let deepest: string | undefined;
  for (const dir of ancestors(path)) {
    const st = await statOrUndefined(dir);
    if (!st) break;
    if (!st.isDirectory()) return undefined; // the operation itself reports "not a directory"
    if ((bitsFor(user, st) & X) === 0) return refuse;
    deepest = dir;
  }
  const target = await statOrUndefined(path);
  if (target) {
    const need = access === "read" ? R : W;
    return (bitsFor(user, target) & need) === need ? undefined : refuse;
  }
  if (access === "read") return undefined; // missing: the caller answers 404
  if (!deepest) return refuse;
  const st = await stat(deepest);
  return (bitsFor(user, st) & (W | X)) === (W | X) ? undefined : refuse;
}
