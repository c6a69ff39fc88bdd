import type { ConnectRouter } from "@connectrpc/connect";
import { Proxy as ProxyService } from "../../gen/envdts/v1/proxy_pb.js";
import { toConnectError } from "../errors.js";
import { createProxy } from "./create-proxy.js";
import { deleteProxy } from "./delete-proxy.js";
import type { ProxyServiceDeps } from "./deps.js";
import { exposePort, unexposePort } from "./expose-port.js";
import { listListeningPorts } from "./list-listening-ports.js";
import { listProxies } from "./list-proxies.js";
import { waitForPort } from "./wait-for-port.js";

/** Runs an RPC body and maps its failure to a Connect error in one place. */
async function edge<T>(body: () => T | Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw toConnectError(err);
  }
}

/** Registers envdts.v1.Proxy, one file per RPC. */
export function registerProxyService(router: ConnectRouter, deps: ProxyServiceDeps): void {
  router.service(ProxyService, {
    createProxy: (req) => edge(() => createProxy(deps, req)),
    deleteProxy: (req) => edge(() => deleteProxy(deps, req)),
    listProxies: () => edge(() => listProxies(deps)),
    listListeningPorts: (req) => edge(() => listListeningPorts(deps, req)),
    waitForPort: (req, hctx) => edge(() => waitForPort(req, hctx)),
    exposePort: (req) => edge(() => exposePort(deps, req)),
    unexposePort: (req) => edge(() => unexposePort(deps, req)),
  });
}
