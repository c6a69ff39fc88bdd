import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DeleteProxyRequest, DeleteProxyResponseSchema } from "../../gen/envdts/v1/proxy_pb.js";
import type { ProxyServiceDeps } from "./deps.js";

/** Proxy.DeleteProxy: stops the listener and closes the proxy's open connections. */
export async function deleteProxy(deps: ProxyServiceDeps, req: DeleteProxyRequest): Promise<MessageInitShape<typeof DeleteProxyResponseSchema>> {
  await deps.registry.delete(req.id);
  return {};
}
