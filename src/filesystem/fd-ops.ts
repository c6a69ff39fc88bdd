import { native } from "../native.js";

/**
 * File operations on descriptors and (directory descriptor, name) pairs, from the native addon
 * (native/src/fdops.c). Operations that must not be redirected between a check and a use take the
 * descriptor that was checked, never a path looked up again. Descriptors are plain numbers; the
 * caller closes them (fs.closeSync).
 */
interface FdOps {
  resolveParent(rootFd: number, jail: boolean, rootPath: string, path: string | Buffer, follow: boolean, uid: number, gid: number): [number, Buffer];
  openResolved(rootFd: number, jail: boolean, rootPath: string, path: string | Buffer, flags: number, mode: number): number;
  openResolvedAsync(rootFd: number, jail: boolean, rootPath: string, path: string | Buffer, flags: number, mode: number): Promise<number>;
  openAt(dirfd: number, name: string | Buffer, flags: number, mode: number): number;
  openAtAsync(dirfd: number, name: string | Buffer, flags: number, mode: number): Promise<number>;
  statAt(dirfd: number, name: string | Buffer, follow: boolean): number[] | null;
  mkdirOwned(dirfd: number, name: string | Buffer, mode: number, uid: number, gid: number): number;
  chownAt(fd: number, name: string | Buffer, uid: number, gid: number, follow: boolean): void;
  chmodFd(fd: number, mode: number): void;
  renameAt(olddirfd: number, oldname: string | Buffer, newdirfd: number, newname: string | Buffer, flags: number): void;
  renameAtAsync(olddirfd: number, oldname: string | Buffer, newdirfd: number, newname: string | Buffer, flags: number): Promise<void>;
  unlinkAt(dirfd: number, name: string | Buffer, flags: number): void;
  symlinkAt(target: string | Buffer, dirfd: number, name: string | Buffer): void;
  readlinkAt(dirfd: number, name: string | Buffer): Buffer;
  utimesAt(dirfd: number, name: string | Buffer, atimeMs: number, mtimeMs: number, follow: boolean): void;
  readDirFd(dirfd: number): Buffer[];
}

let ops: FdOps | undefined;
/** The addon's descriptor functions (loaded once). */
export function fdOps(): FdOps {
  ops ??= native() as unknown as FdOps;
  return ops;
}

/** renameat2's flag: fail with EEXIST instead of replacing the destination. */
export const RENAME_NOREPLACE = 1;
/** unlinkat's flag: remove a directory. */
export const AT_REMOVEDIR = 0x200;
/** open(2)'s O_PATH: a descriptor that names a file without opening it for I/O. */
export const O_PATH = 0o10000000;

const S_IFMT = 0o170000;

/** What fstatat says of an entry: the fields the daemon uses, with node:fs Stats' type tests. */
export class FileStat {
  constructor(
    readonly dev: number,
    readonly ino: number,
    readonly mode: number,
    readonly nlink: number,
    readonly uid: number,
    readonly gid: number,
    readonly rdev: number,
    readonly size: number,
    readonly atimeMs: number,
    readonly mtimeMs: number,
    readonly ctimeMs: number,
  ) {}
  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === 0o120000;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === 0o010000;
  }
  isSocket(): boolean {
    return (this.mode & S_IFMT) === 0o140000;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === 0o020000;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === 0o060000;
  }
}

/** fstatat(dirfd, name) (name "" = the descriptor itself); undefined when the name does not exist. */
export function statAt(dirfd: number, name: string | Buffer, follow = false): FileStat | undefined {
  const a = fdOps().statAt(dirfd, name, follow);
  return a === null ? undefined : new FileStat(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!);
}

/** Whether two stats are of one file (device and inode), whatever names led to them. */
export function sameFile(a: { dev: number; ino: number }, b: { dev: number; ino: number }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Gives a native error the shape of a node:fs one (syscall, path), for Go-worded messages. */
export function withPath<T extends Error>(err: T, syscall: string, path: string): T {
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code === "string") {
    e.syscall = syscall;
    e.path = path;
  }
  return err;
}
