import type { DaemonContext } from "../daemon-context.js";
import type { Capability } from "../server.js";
import { GATEWAY_PREFIX, createGateway } from "./gateway.js";
import { metrics } from "../system/metrics-registry.js";
import { PortExposer } from "./port-exposure.js";
import { registerProxyMetrics } from "./proxy-metrics.js";
import { ProxyRegistry } from "./registry.js";

/**
 * The envdts.v1.Proxy service (managed TCP/UDP/HTTP/HTTPS/WebSocket proxies, listening ports,
 * port exposure) and the /proxy/<port>/ gateway on the daemon's own port.
 */
export function proxyCapability(ctx: DaemonContext): Capability {
  const registry = new ProxyRegistry(ctx.log);
  const exposer = new PortExposer(registry, ctx.log, ctx.config.exposeAddress);
  const gateway = createGateway(ctx);
  exposer.start();
  const unregisterMetrics = registerProxyMetrics(metrics, registry);
  return {
    lazyRpc: [
      {
        typeNames: ["envdts.v1.Proxy"],
        load: async () => {
          const { registerProxyService } = await import("./rpc/service.js");
          return (router) => registerProxyService(router, { registry, exposer, log: ctx.log });
        },
      },
    ],
    prefixRoutes: { [GATEWAY_PREFIX]: (req, res) => gateway.handle(req, res) },
    upgradeRoutes: { [GATEWAY_PREFIX]: (req, socket, head) => gateway.upgrade(req, socket, head) },
    async close() {
      unregisterMetrics();
      await exposer.stop();
      gateway.close();
      await registry.closeAll();
    },
  };
}
