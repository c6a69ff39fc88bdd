import { statSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import { goPathError } from "../errors.js";
import type { FsRequest } from "../request.js";
import { DirWatcher } from "./dir-watcher.js";
import { isNetworkMount } from "./network-mount.js";

/** The fields WatchDirRequest and CreateWatcherRequest share. */
export interface WatchParams {
  path: string;
  recursive: boolean;
  includeEntry: boolean;
  allowNetworkMounts: boolean;
}

/**
 * Validates a watch request as envd does (not_found, "not a directory",
 * network mounts) plus the root jail and permission checks, then starts a
 * DirWatcher. Throws ConnectError.
 */
export function openWatcher(ctx: DaemonContext, r: FsRequest, params: WatchParams): DirWatcher {
  const path = r.resolve(params.path);
  r.checkFollow(path);
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConnectError(`path ${path} not found: ${goPathError("stat", path, err)}`, Code.NotFound);
    throw new ConnectError(`error statting path ${path}: ${goPathError("stat", path, err)}`, failureCode(err));
  }
  // envd formats a nil error with %w here; clients may match the odd text.
  if (!isDir) throw new ConnectError(`path ${path} not a directory: %!w(<nil>)`, Code.InvalidArgument);
  if (!params.allowNetworkMounts) {
    let network: boolean;
    try {
      network = isNetworkMount(path);
    } catch (err) {
      throw new ConnectError(`error checking mount status: failed to statfs ${path}: ${(err as Error).message}`, failureCode(err));
    }
    if (network) throw new ConnectError(`cannot watch path on network filesystem: ${path}`, Code.InvalidArgument);
  }
  r.access.requireEnter(path);
  const access = r.access;
  const watcher = new DirWatcher({
    root: path,
    recursive: params.recursive,
    includeEntry: params.includeEntry,
    queueMax: ctx.config.watchQueueMax,
    fsRoot: ctx.config.fsRoot,
    canEnter: access.enforced ? (abs) => access.canEnter(abs) : undefined,
    log: ctx.log,
  });
  watcher.start();
  return watcher;
}
