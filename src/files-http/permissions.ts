import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { goErrorText } from "../filesystem/go-text.js";
import { HttpError } from "../http/respond.js";
import { FileAccess, R_OK, W_OK, X_OK } from "../filesystem/access.js";
import type { UserAccount } from "../users/passwd.js";
import { isPseudoFs } from "./pseudo-fs.js";

/**
 * Whether `user` could `access` `path`, asked of the kernel as that user (see
 * FileAccess): a write to a missing path needs write and search on the nearest
 * existing directory; writes into procfs, sysfs and the like are refused to users
 * other than root. Returns the refusal text, or undefined when allowed.
 */
export async function permissionProblem(user: UserAccount, path: string, access: "read" | "write"): Promise<string | undefined> {
  const checks = FileAccess.enforcedFor(user);
  try {
    if (access === "read") await checks.require(path, R_OK);
    else {
      if (existsSync(path)) await checks.require(path, W_OK);
      else await checks.requireCreate(path);
      if (user.uid !== 0 && (await isPseudoFs(path))) return `permission denied: user '${user.name}' cannot write kernel interface files ('${path}')`;
    }
    return undefined;
  } catch (err) {
    if (err instanceof ConnectError) return err.rawMessage;
    throw err;
  }
}

/** open(2) as `user` (see FileAccess.open); a refusal is HTTP 403. */
export async function openForUser(user: UserAccount, path: string, flags: number): Promise<FileHandle> {
  try {
    return await FileAccess.enforcedFor(user).open(path, flags);
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.PermissionDenied) throw new HttpError(403, err.rawMessage);
    throw err;
  }
}

/**
 * Whether `user` could open the very file descriptor `fd` holds (for reading or
 * writing), asked of the kernel as the user through /proc/self/fd: read or write
 * permission on that file, whatever its path names by now. Returns the refusal
 * text, or undefined when allowed (always for root).
 */
export async function descriptorProblem(user: UserAccount, fd: number, path: string, access: "read" | "write"): Promise<string | undefined> {
  if (user.uid === 0) return undefined;
  try {
    const handle = await FileAccess.enforcedFor(user).open(`/proc/self/fd/${fd}`, access === "read" ? 0 : 1);
    await handle.close();
    return undefined;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.PermissionDenied) return `permission denied: user '${user.name}' cannot ${access} '${path}'`;
    throw err;
  }
}

/**
 * Whether `user` may write `name` in the directory descriptor `dirfd` holds, asked of
 * the kernel as the user through /proc/self/fd: write permission on the existing file,
 * or write and search on that very directory for a new one. Returns the refusal text,
 * or undefined when allowed.
 */
export async function targetProblem(user: UserAccount, dirfd: number, name: Buffer, exists: boolean, path: string): Promise<string | undefined> {
  const dir = Buffer.from(`/proc/self/fd/${dirfd}`);
  try {
    if (exists) await FileAccess.enforcedFor(user).require(Buffer.concat([dir, Buffer.from("/"), name]), W_OK, false);
    else await FileAccess.enforcedFor(user).require(dir, W_OK | X_OK);
    return undefined;
  } catch (err) {
    if (err instanceof ConnectError) return `permission denied: user '${user.name}' cannot ${exists ? "write" : "create"} '${path}'`;
    throw err;
  }
}

/** Sources taken out of the way for removal; restore() puts them back. */
export interface Claim {
  paths: string[];
  restore(): Promise<void>;
}

const RENAME_NOREPLACE = 1;

/**
 * Renames each of `paths` as `user` to a hidden name beside it, before a compose
 * writes anything: the kernel decides whether the user may take the file out of its
 * directory (the sticky bit included) the way it would decide the final deletion.
 */
export async function claimForRemoval(user: UserAccount, paths: string[]): Promise<Claim> {
  const access = FileAccess.enforcedFor(user);
  const done: [string, string][] = [];
  const restore = async () => {
    for (const [from, to] of done.splice(0).reverse()) await access.rename(to, from, RENAME_NOREPLACE).catch(() => {});
  };
  try {
    for (const p of paths) {
      const claimed = posix.join(posix.dirname(p), `.${posix.basename(p)}.e2b-compose-source.${randomBytes(6).toString("hex")}`);
      await access.rename(p, claimed, RENAME_NOREPLACE);
      done.push([p, claimed]);
    }
  } catch (err) {
    await restore();
    if (err instanceof ConnectError && err.code === Code.PermissionDenied) throw new HttpError(403, err.rawMessage);
    throw new HttpError(500, `error claiming source file: ${goErrorText(err)}`);
  }
  return { paths: done.map(([, to]) => to), restore };
}
