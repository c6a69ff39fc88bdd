import type { DaemonContext } from "../daemon-context.js";
import type { Capability } from "../server.js";
import { ProcessRegistry } from "./registry.js";
import { registerProcessServices } from "./service.js";

/** The process.Process service and its envd-ts extension (envdts.v1.ProcessControl). */
export function processCapability(ctx: DaemonContext): Capability {
  const registry = new ProcessRegistry(
    { outputBufferBytes: ctx.config.outputBufferBytes, historyTtlSeconds: ctx.config.historyTtlSeconds, historyMaxEntries: ctx.config.historyMaxEntries },
    ctx.log,
  );
  return {
    rpc(router) {
      registerProcessServices(router, { ctx, registry });
    },
    async close() {
      await registry.closeAll();
    },
  };
}
