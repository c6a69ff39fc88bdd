import { create } from "@bufbuild/protobuf";
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { DaemonContext } from "../../daemon-context.js";
import { WatchDirResponseSchema, type FilesystemEvent, type WatchDirRequest, type WatchDirResponse } from "../../gen/filesystem_pb.js";
import { keepaliveIntervalMs, withKeepalive } from "../../http/keepalive.js";
import { fsRequest } from "../request.js";
import { openWatcher } from "../watch/open-watcher.js";

async function* asResponses(events: AsyncIterable<FilesystemEvent>): AsyncGenerator<WatchDirResponse> {
  for await (const ev of events) yield create(WatchDirResponseSchema, { event: { case: "filesystem", value: ev } });
}

/**
 * Filesystem.WatchDir: validation errors end the stream before anything is sent;
 * then start{}, events, and keepalives on idle. The watcher (and its inotify fd)
 * is closed as soon as the client goes away, the deadline passes or the daemon
 * stops; a watcher failure (queue overflow, watch limit) ends the stream with it.
 */
export async function* watchDir(ctx: DaemonContext, req: WatchDirRequest, hctx: HandlerContext): AsyncGenerator<WatchDirResponse> {
  const watcher = openWatcher(ctx, fsRequest(ctx, hctx), req);
  const onAbort = () => watcher.close();
  hctx.signal.addEventListener("abort", onAbort);
  try {
    if (hctx.signal.aborted) watcher.close();
    yield create(WatchDirResponseSchema, { event: { case: "start", value: {} } });
    const ping = () => create(WatchDirResponseSchema, { event: { case: "keepalive", value: {} } });
    yield* withKeepalive(asResponses(watcher.events()), keepaliveIntervalMs(hctx, ctx.config.keepaliveSeconds), ping, hctx.signal);
    // The deadline or a shutdown ends the stream with its code, as connect-go does.
    if (hctx.signal.aborted) throw ConnectError.from(hctx.signal.reason);
  } finally {
    hctx.signal.removeEventListener("abort", onAbort);
    watcher.close();
  }
}
