import { lstatSync, realpathSync, statSync, type BigIntStats } from "node:fs";
import { posix } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
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

function fileType(mode: bigint): FileType {
  const fmt = Number(mode) & 0o170000;
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

function timestamp(ns: bigint): { seconds: bigint; nanos: number } | undefined {
  if (ns === 0n) return undefined;
  let seconds = ns / 1_000_000_000n;
  let nanos = ns % 1_000_000_000n;
  if (nanos < 0n) {
    seconds -= 1n;
    nanos += 1_000_000_000n;
  }
  return { seconds, nanos: Number(nanos) };
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
 * EntryInfo as envd builds it (PROTOCOL §4.2): lstat based; a symlink reports its
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
    throw new ConnectError(`error getting file info: ${goPathError("lstat", shown, err)}`, Code.Internal);
  }
  const isLink = (Number(st.mode) & 0o170000) === 0o120000;
  let type = fileType(st.mode);
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
        type = fileType(target.mode);
        mode = Number(target.mode) & 0o777;
        metaPath = resolved;
      } catch {
        /* broken or cyclic: unspecified type, mode 0, as envd */
      }
    }
  }
  const metaString = metaPath !== undefined ? exactString(metaPath) : undefined;
  const metadata = metaString !== undefined ? readE2bMetadata(metaString) : {};
  const base = posix.basename(shown);
  return create(EntryInfoSchema, {
    name: base === "" ? "/" : base,
    type,
    path: shown,
    size: st.size,
    mode,
    permissions: goFileModeString(Number(st.mode)),
    owner: userName(Number(st.uid)),
    group: groupName(Number(st.gid)),
    modifiedTime: timestamp(st.mtimeNs),
    symlinkTarget,
    metadata,
  });
}
