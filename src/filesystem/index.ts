import type { DaemonContext } from "../daemon-context.js";
import type { Capability } from "../server.js";
import { filesRoutes } from "../files-http/routes.js";
import { registerFilesystemService } from "./rpc/service.js";
import { WatcherRegistry } from "./watch/registry.js";
import { DirWatcher } from "./watch/dir-watcher.js";
import { metrics } from "../system/metrics-registry.js";

/** The filesystem.Filesystem service, its envd-ts extensions and the /files HTTP API. */
export function filesystemCapability(ctx: DaemonContext): Capability {
  const watchers = new WatcherRegistry();
  const unregister = [
    metrics.registerGauge("envd_watchers_active", "Filesystem watchers open (WatchDir streams and CreateWatcher watchers)", () => DirWatcher.open),
    metrics.registerGauge("envd_watchers_polling", "Watchers created by CreateWatcher and not yet removed", () => watchers.size),
  ];
  return {
    rpc(router) {
      registerFilesystemService(router, ctx, watchers);
    },
    lazyRpc: [
      {
        typeNames: ["envdts.v1.FilesystemExt"],
        load: async () => {
          const { registerFilesystemExtService } = await import("./rpc-ext/service.js");
          return (router) => registerFilesystemExtService(router, ctx);
        },
      },
    ],
    close() {
      unregister.forEach((remove) => remove());
      watchers.closeAll();
    },
    rest: filesRoutes(ctx),
  };
}
