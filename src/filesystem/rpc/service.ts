import type { ConnectRouter } from "@connectrpc/connect";
import type { DaemonContext } from "../../daemon-context.js";
import { Filesystem } from "../../gen/filesystem_pb.js";
import type { WatcherRegistry } from "../watch/registry.js";
import { listDir } from "./list-dir.js";
import { makeDir } from "./make-dir.js";
import { move } from "./move.js";
import { remove } from "./remove.js";
import { stat } from "./stat.js";
import { watchDir } from "./watch-dir.js";
import { createWatcher, getWatcherEvents, removeWatcher } from "./watchers.js";

/** Registers filesystem.Filesystem, E2B's service, one file per RPC. */
export function registerFilesystemService(router: ConnectRouter, ctx: DaemonContext, watchers: WatcherRegistry): void {
  router.service(Filesystem, {
    stat: (req, hctx) => stat(ctx, req, hctx),
    makeDir: (req, hctx) => makeDir(ctx, req, hctx),
    move: (req, hctx) => move(ctx, req, hctx),
    listDir: (req, hctx) => listDir(ctx, req, hctx),
    remove: (req, hctx) => remove(ctx, req, hctx),
    watchDir: (req, hctx) => watchDir(ctx, req, hctx),
    createWatcher: (req, hctx) => createWatcher(ctx, watchers, req, hctx),
    getWatcherEvents: (req) => getWatcherEvents(watchers, req),
    removeWatcher: (req) => removeWatcher(watchers, req),
  });
}
