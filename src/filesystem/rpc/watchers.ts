import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { DaemonContext } from "../../daemon-context.js";
import type {
  CreateWatcherRequest,
  CreateWatcherResponseSchema,
  GetWatcherEventsRequest,
  GetWatcherEventsResponseSchema,
  RemoveWatcherRequest,
  RemoveWatcherResponseSchema,
} from "../../gen/filesystem_pb.js";
import { fsRequest } from "../request.js";
import { openWatcher } from "../watch/open-watcher.js";
import type { WatcherRegistry } from "../watch/registry.js";

/** Filesystem.CreateWatcher: WatchDir's validation, then a watcher kept under a new id. */
export function createWatcher(ctx: DaemonContext, registry: WatcherRegistry, req: CreateWatcherRequest, hctx: HandlerContext): MessageInitShape<typeof CreateWatcherResponseSchema> {
  const watcher = openWatcher(ctx, fsRequest(ctx, hctx), req);
  return { watcherId: registry.add(watcher) };
}

/** Filesystem.GetWatcherEvents: the events since the last call, or the watcher's terminal error. */
export function getWatcherEvents(registry: WatcherRegistry, req: GetWatcherEventsRequest): MessageInitShape<typeof GetWatcherEventsResponseSchema> {
  return { events: registry.get(req.watcherId).drain() };
}

/** Filesystem.RemoveWatcher: stops the watcher and forgets the id. */
export function removeWatcher(registry: WatcherRegistry, req: RemoveWatcherRequest): MessageInitShape<typeof RemoveWatcherResponseSchema> {
  registry.remove(req.watcherId);
  return {};
}
