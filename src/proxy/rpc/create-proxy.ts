import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CreateProxyRequest, CreateProxyResponseSchema } from "../../gen/envdts/v1/proxy_pb.js";
import { parseProxySpec } from "../proxy-spec.js";
import { proxyInfo, rememberConfig } from "./convert.js";
import type { ProxyServiceDeps } from "./deps.js";

/** Proxy.CreateProxy: validates the config and starts the listener; the proxy outlives the call. */
export async function createProxy(deps: ProxyServiceDeps, req: CreateProxyRequest): Promise<MessageInitShape<typeof CreateProxyResponseSchema>> {
  const spec = parseProxySpec(req.config);
  const proxy = await deps.registry.create(spec, "manual");
  if (req.config) rememberConfig(proxy, { ...req.config, id: spec.id });
  return { proxy: proxyInfo(proxy) };
}
