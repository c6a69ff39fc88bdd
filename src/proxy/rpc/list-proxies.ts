import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListProxiesResponseSchema } from "../../gen/envdts/v1/proxy_pb.js";
import { proxyInfo } from "./convert.js";
import type { ProxyServiceDeps } from "./deps.js";

/** Proxy.ListProxies: every proxy, oldest first, with live statistics. */
export function listProxies(deps: ProxyServiceDeps): MessageInitShape<typeof ListProxiesResponseSchema> {
  return { proxies: deps.registry.list().map(proxyInfo) };
}
