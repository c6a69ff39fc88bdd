import { lstatSync, realpathSync, statSync, type BigIntStats } from "node:fs";
import { posix } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { failureCode } from "../http/failure-code.js";
import { EntryInfoSchema, FileType, type EntryInfo } from "../gen/filesystem_pb.js";
import { groupName, userName } from "../users/passwd.js";
import { goPathError } from "./errors.js";
import { goFileModeString } from "./file-mode.js";
import { readE2bMetadata } from "./xattr.js";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A file name or path for the wire. Names that are not valid UTF-8 cannot travel in
 * a proto string, so invalid bytes become U+FFFD (lossy, like `ls` showing `?`).
 */
export function displayName(path: string | Buffer): string {
  return typeof path === "string" ? path : path.toString("utf8");
}

/** The path as a string when it round-trips, undefined when it is not valid UTF-8. */
export function exactString(path: string | Buffer): string | undefined {
  if (typeof path === "string") return path;
  try {
    return strictUtf8.decode(path);
  } catch {
    return undefined;
  }
}

function fileType(mode: number): FileType {
  const fmt = mode & 0o170000;
  if (fmt === 0o100000) return FileType.FILE;
  if (fmt === 0o040000) return FileType.DIRECTORY;
  return FileType.UNSPECIFIED;
}

const realRoots = new Map<string, string>();
function beneath(root: string, target: string): boolean {
  let real = realRoots.get(root);
  if (real === undefined) {
    try {
      real = realpathSync.native(root);
    } catch {
      real = posix.resolve(root);
    }
    realRoots.set(root, real);
  }
  return real === "/" || target === real || target.startsWith(real + "/");
}

/** The lstat fields an EntryInfo is made of, whether from lstat or from a native directory listing. */
export interface EntryStat {
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  /** mtime as whole seconds and nanoseconds in [0, 1e9), as the kernel keeps it. */
  mtimeSec: bigint;
  mtimeNsec: number;
}

function entryStat(st: BigIntStats): EntryStat {
  let mtimeSec = st.mtimeNs / 1_000_000_000n;
  let nanos = st.mtimeNs % 1_000_000_000n;
  if (nanos < 0n) {
    mtimeSec -= 1n;
    nanos += 1_000_000_000n;
  }
  return { mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: st.size, mtimeSec, mtimeNsec: Number(nanos) };
}

/**
 * The EntryInfo of an entry that is no symlink and has no user.e2b.* metadata, from its lstat
 * fields: what a directory listing builds for almost every entry without another syscall.
 */
export function plainEntryInfo(shown: string, st: EntryStat): EntryInfo {
  return assemble(shown, st, fileType(st.mode), st.mode & 0o777, undefined, {});
}

function assemble(shown: string, st: EntryStat, type: FileType, mode: number, symlinkTarget: string | undefined, metadata: Record<string, string>): EntryInfo {
  const base = posix.basename(shown);
  return create(EntryInfoSchema, {
    name: base === "" ? "/" : base,
    type,
    path: shown,
    size: st.size,
    mode,
    permissions: goFileModeString(st.mode),
    owner: userName(st.uid),
    group: groupName(st.gid),
    modifiedTime: st.mtimeSec === 0n && st.mtimeNsec === 0 ? undefined : { seconds: st.mtimeSec, nanos: st.mtimeNsec },
    symlinkTarget,
    metadata,
  });
}

/** Options for {@link entryInfo}. */
export interface EntryInfoOptions {
  /** Reported as `path` instead of the path that was examined (ListDir's unresolved root). */
  displayPath?: string;
  /**
   * The root jail: a symlink resolving outside it reports its target path but not
   * the target's type, mode or metadata, so the jail leaks nothing about outside files.
   */
  fsRoot?: string;
}

/**
 * EntryInfo as envd builds it (docs/protocol.md, "EntryInfo"): lstat based; a symlink reports its
 * final target's type and permission bits and the fully resolved target path;
 * `permissions` is Go's FileMode string of the lstat mode; owner and group names;
 * user.e2b.* xattrs as metadata. Throws not_found (ENOENT) or internal.
 */
export function entryInfo(path: string | Buffer, opts: EntryInfoOptions = {}): EntryInfo {
  const shown = opts.displayPath ?? displayName(path);
  let st: BigIntStats;
  try {
    st = lstatSync(path, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ConnectError(`file not found: ${goPathError("lstat", shown, err)}`, Code.NotFound);
    }
    throw new ConnectError(`error getting file info: ${goPathError("lstat", shown, err)}`, failureCode(err));
  }
  const isLink = (Number(st.mode) & 0o170000) === 0o120000;
  let type = fileType(Number(st.mode));
  let mode = Number(st.mode) & 0o777;
  let symlinkTarget: string | undefined;
  let metaPath: string | Buffer | undefined = path;
  if (isLink) {
    let resolved: string | Buffer | undefined;
    try {
      resolved = realpathSync.native(path, { encoding: "buffer" });
    } catch {
      resolved = undefined;
    }
    symlinkTarget = resolved ? displayName(resolved) : shown;
    const outside = resolved !== undefined && opts.fsRoot !== undefined && !beneath(opts.fsRoot, displayName(resolved));
    type = FileType.UNSPECIFIED;
    mode = 0;
    metaPath = undefined;
    if (resolved && !outside) {
      try {
        const target = statSync(resolved, { bigint: true });
        type = fileType(Number(target.mode));
        mode = Number(target.mode) & 0o777;
        metaPath = resolved;
      } catch {
        /* broken or cyclic: unspecified type, mode 0, as envd */
      }
    }
  }
  const metaString = metaPath !== undefined ? exactString(metaPath) : undefined;
  const metadata = metaString !== undefined ? readE2bMetadata(metaString) : {};
  return assemble(shown, entryStat(st), type, mode, symlinkTarget, metadata);
}
