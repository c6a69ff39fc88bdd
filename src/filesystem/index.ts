import type { DaemonContext } from "../daemon-context.js";
import type { Capability } from "../server.js";
import { filesRoutes } from "../files-http/routes.js";
import { registerFilesystemExtService } from "./rpc-ext/service.js";
import { registerFilesystemService } from "./rpc/service.js";
import { WatcherRegistry } from "./watch/registry.js";

/** The filesystem.Filesystem service, its envd-ts extensions and the /files HTTP API. */
export function filesystemCapability(ctx: DaemonContext): Capability {
  const watchers = new WatcherRegistry();
  return {
    rpc(router) {
      registerFilesystemService(router, ctx, watchers);
      registerFilesystemExtService(router, ctx);
    },
    close() {
      watchers.closeAll();
    },
    rest: filesRoutes(ctx),
  };
}
