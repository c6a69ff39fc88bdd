import { closeSync, constants, lstatSync, openSync, readlinkSync, realpathSync } from "node:fs";
import { posix } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DaemonContext } from "../daemon-context.js";
import type { UserAccount } from "../users/passwd.js";
import { expandAndResolve } from "../users/paths.js";
import { open, type FileHandle } from "node:fs/promises";
import { fdOps, O_PATH as O_PATH_FLAG, withPath } from "./fd-ops.js";

/** Symlinks followed in one resolution before giving up, as Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;

function escapeError(path: string): ConnectError {
  return new ConnectError(`path '${path}' is outside the file root`, Code.PermissionDenied);
}

function isBeneath(root: string, path: string): boolean {
  return path === root || path.startsWith(root === "/" ? "/" : root + "/");
}

const realRoots = new Map<string, string>();
function realRoot(root: string): string {
  let real = realRoots.get(root);
  if (real === undefined) {
    try {
      real = realpathSync(root);
    } catch {
      real = posix.resolve(root);
    }
    realRoots.set(root, real);
  }
  return real;
}

/**
 * Resolves `absPath` component by component beneath `root`, following symlinks
 * (all but the last unless `followFinal`), and returns the resolved path.
 * Throws permission_denied as soon as `..` or a symlink would leave the root, the
 * way openat2(RESOLVE_IN_ROOT) refuses escapes. Missing components end the walk:
 * the rest is lexical and, being normalised, cannot climb out.
 */
export function resolveBeneath(root: string, absPath: string, followFinal: boolean): string {
  const top = realRoot(root);
  const lexical = posix.resolve(absPath);
  const rootLexical = posix.resolve(root);
  let rel: string;
  if (isBeneath(top, lexical)) rel = posix.relative(top, lexical);
  else if (isBeneath(rootLexical, lexical)) rel = posix.relative(rootLexical, lexical);
  else throw escapeError(absPath);

  const parts = rel.split("/").filter((p) => p !== "" && p !== ".");
  let current = top;
  let hops = 0;
  while (parts.length > 0) {
    const name = parts.shift()!;
    if (name === ".") continue;
    if (name === "..") {
      if (current === top) throw escapeError(absPath);
      current = posix.dirname(current);
      continue;
    }
    const next = posix.join(current, name);
    let isLink = false;
    try {
      isLink = lstatSync(next).isSymbolicLink();
    } catch {
      const rest = posix.join(next, ...parts);
      if (!isBeneath(top, posix.resolve(rest))) throw escapeError(absPath);
      return posix.resolve(rest);
    }
    if (isLink && (parts.length > 0 || followFinal)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new ConnectError(`too many levels of symbolic links in '${absPath}'`, Code.FailedPrecondition);
      const target = readlinkSync(next);
      if (posix.isAbsolute(target)) {
        if (!isBeneath(top, posix.resolve(target))) throw escapeError(absPath);
        parts.unshift(...posix.relative(top, posix.resolve(target)).split("/").filter(Boolean));
        current = top;
      } else {
        parts.unshift(...target.split("/").filter((p) => p !== ""));
      }
      continue;
    }
    current = next;
  }
  return current;
}

/**
 * Throws permission_denied when `absPath` leaves config.fsRoot, through `..` or
 * through symlinks; a no-op when no root is configured.
 */
export function checkBeneathRoot(ctx: DaemonContext, absPath: string, opts: { followFinal?: boolean } = {}): void {
  const root = ctx.config.fsRoot;
  if (!root) return;
  resolveBeneath(root, absPath, opts.followFinal ?? false);
}

/**
 * The absolute path a file request means: E2B's expansion (users/paths.ts), then
 * the root jail for every component but the last (callers that follow the final
 * component, like reads and writes, call checkBeneathRoot with followFinal too).
 */
export function resolveUserPath(ctx: DaemonContext, user: UserAccount, rawPath: string): string {
  if (rawPath.includes("\0")) throw new ConnectError("path contains a NUL byte", Code.InvalidArgument);
  const abs = expandAndResolve(rawPath, user, ctx.state.defaultWorkdir);
  checkBeneathRoot(ctx, abs);
  return abs;
}

/** Where descriptor-based resolution starts: the jail's directory, or "/" (AT_FDCWD with absolute paths). */
interface Start {
  fd: number;
  jail: boolean;
  /** The jail's real path; absolute symlink targets beneath it stay inside. */
  rootPath: string;
}

const AT_FDCWD = -100;
const NO_JAIL: Start = { fd: AT_FDCWD, jail: false, rootPath: "/" };
const jailStarts = new Map<string, Start>();

function startFor(ctx: DaemonContext): Start {
  const root = ctx.config.fsRoot;
  if (!root) return NO_JAIL;
  let start = jailStarts.get(root);
  if (start === undefined) {
    // Held for the daemon's lifetime: every resolution beneath the root starts from this descriptor,
    // so renaming or replacing the root's own path later cannot move the jail.
    const fd = openSync(realRoot(root), constants.O_RDONLY | constants.O_DIRECTORY);
    start = { fd, jail: true, rootPath: realRoot(root) };
    jailStarts.set(root, start);
  }
  return start;
}

/** The path handed to the native resolver: beneath the jail (relative), or absolute without one. */
function pathFor(ctx: DaemonContext, start: Start, abs: string): string {
  if (!start.jail) return abs;
  const lexical = posix.resolve(abs);
  const rootLexical = posix.resolve(ctx.config.fsRoot!);
  if (isBeneath(start.rootPath, lexical)) return posix.relative(start.rootPath, lexical) || ".";
  if (isBeneath(rootLexical, lexical)) return posix.relative(rootLexical, lexical) || ".";
  throw escapeError(abs);
}

function resolveFailure(err: unknown, abs: string, syscall: string): unknown {
  if ((err as NodeJS.ErrnoException).code === "EXDEV") return escapeError(abs);
  return withPath(err as Error, syscall, abs);
}

/** A resolved directory descriptor and the name of the entry in it; close() releases the descriptor. */
export interface ParentEntry {
  dir: number;
  name: Buffer;
  close(): void;
}

/** Options for {@link openParent}. */
export interface ParentOptions {
  /** Follow a final symlink, so `name` is never one. */
  follow: boolean;
  /** Create missing directories on the way, owned by this user from birth (E2B's EnsureDirs). */
  create?: { uid: number; gid: number };
}

/**
 * Resolves `abs` once into the directory holding its final entry and that entry's name, beneath the
 * root jail when one is set (escapes: permission_denied). Every later step acts on (dir, name), so a
 * component swapped for a symlink afterwards cannot redirect it. Errors otherwise are errno errors
 * (ENOENT, ENOTDIR, EACCES ...) with syscall and path set.
 */
export function openParent(ctx: DaemonContext, abs: string, opts: ParentOptions): ParentEntry {
  const start = startFor(ctx);
  const path = pathFor(ctx, start, abs);
  let dir: number;
  let name: Buffer;
  try {
    [dir, name] = fdOps().resolveParent(start.fd, start.jail, start.rootPath, path, opts.follow, opts.create?.uid ?? -1, opts.create?.gid ?? -1);
  } catch (err) {
    throw resolveFailure(err, abs, opts.create ? "mkdir" : "stat");
  }
  return { dir, name, close: () => closeSync(dir) };
}

/**
 * Opens `abs` in one resolution (openat2 with RESOLVE_NO_MAGICLINKS, and RESOLVE_BENEATH in the
 * jail; a component-by-component walk where openat2 cannot). Synchronous: for metadata opens
 * (O_PATH) and small files on the hot path.
 */
export function openPath(ctx: DaemonContext, abs: string, flags: number, mode = 0): number {
  const start = startFor(ctx);
  const path = pathFor(ctx, start, abs);
  try {
    return fdOps().openResolved(start.fd, start.jail, start.rootPath, path, flags, mode);
  } catch (err) {
    throw resolveFailure(err, abs, "open");
  }
}

/** {@link openPath} on the thread pool: opens that may wait on the disk or a device. */
export async function openPathAsync(ctx: DaemonContext, abs: string, flags: number, mode = 0): Promise<number> {
  const start = startFor(ctx);
  const path = pathFor(ctx, start, abs);
  try {
    return await fdOps().openResolvedAsync(start.fd, start.jail, start.rootPath, path, flags, mode);
  } catch (err) {
    throw resolveFailure(err, abs, "open");
  }
}

/** The path through which the kernel reaches exactly what descriptor `fd` holds. */
export function fdPath(fd: number, name?: Buffer): Buffer {
  const base = Buffer.from(`/proc/self/fd/${fd}`);
  return name && !(name.length === 1 && name[0] === 0x2e) ? Buffer.concat([base, Buffer.from("/"), name]) : base;
}

/**
 * {@link openPathAsync} as a FileHandle: the file is opened once, beneath the jail, and
 * reopened through its own descriptor (/proc/self/fd, no path looked up again) since Node
 * makes FileHandles only by opening.
 */
export async function openHandle(ctx: DaemonContext, abs: string, flags: number): Promise<FileHandle> {
  const fd = await openPathAsync(ctx, abs, flags);
  try {
    return await open(fdPath(fd), flags & ~(constants.O_CREAT | constants.O_EXCL | constants.O_TRUNC | constants.O_NOFOLLOW));
  } finally {
    closeSync(fd);
  }
}

/** A path pinned to what it named when resolved; release() closes the descriptor it goes through. */
export interface PinnedPath {
  path: Buffer;
  release(): void;
}

/**
 * In the root jail: `abs` resolved once beneath the root into its parent directory's descriptor,
 * and a path through that descriptor (/proc/self/fd/N/name) for code that works on paths. Nothing
 * on the way can be swapped for a symlink out of the jail afterwards; the final entry itself is
 * not followed. Without a jail: `abs` itself (the daemon acts as root anyway, as E2B's envd).
 */
export function pinEntry(ctx: DaemonContext, abs: string): PinnedPath {
  if (!ctx.config.fsRoot) return { path: Buffer.from(abs), release: () => {} };
  const parent = openParent(ctx, abs, { follow: false });
  return { path: fdPath(parent.dir, parent.name), release: parent.close };
}

/** {@link pinEntry} for a directory that is followed to its end (listings, watches): the path of its own descriptor. */
export function pinDirectory(ctx: DaemonContext, abs: string): PinnedPath {
  if (!ctx.config.fsRoot) return { path: Buffer.from(abs), release: () => {} };
  const fd = openPath(ctx, abs, O_PATH_FLAG | constants.O_DIRECTORY);
  return { path: fdPath(fd), release: () => closeSync(fd) };
}
