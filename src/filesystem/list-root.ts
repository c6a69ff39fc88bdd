import { realpathSync, statSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { failureCode } from "../http/failure-code.js";
import { goPathError } from "./errors.js";
import type { FsRequest } from "./request.js";

/**
 * The directory a listing reads: the requested path with symlinks followed
 * (envd's EvalSymlinks), jail-checked, and required to be a directory the user
 * may list. Errors as envd: not_found, failed_precondition for symlink loops,
 * invalid_argument for a non-directory.
 */
export function listRoot(r: FsRequest, requested: string): string {
  r.checkFollow(requested);
  let resolved: string;
  try {
    resolved = realpathSync.native(requested);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ConnectError(`path not found: ${goPathError("lstat", requested, err)}`, Code.NotFound);
    if (code === "ELOOP") throw new ConnectError(`cyclic symlink or chain >255 links at ${JSON.stringify(requested)}`, Code.FailedPrecondition);
    throw new ConnectError(`error resolving symlink: ${goPathError("lstat", requested, err)}`, failureCode(err));
  }
  let isDir: boolean;
  try {
    isDir = statSync(resolved).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConnectError(`directory not found: ${goPathError("stat", resolved, err)}`, Code.NotFound);
    throw new ConnectError(`error getting file info: ${goPathError("stat", resolved, err)}`, failureCode(err));
  }
  if (!isDir) throw new ConnectError(`path is not a directory: ${resolved}`, Code.InvalidArgument);
  r.access.requireEnter(resolved);
  return resolved;
}
