import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ExposePortRequest, ExposePortResponseSchema, UnexposePortRequest, UnexposePortResponseSchema } from "../../gen/envdts/v1/proxy_pb.js";
import { proxyInfo } from "./convert.js";
import type { ProxyServiceDeps } from "./deps.js";

/** Proxy.ExposePort: a TCP forward address:port → target_host:port (idempotent for the same address). */
export async function exposePort(deps: ProxyServiceDeps, req: ExposePortRequest): Promise<MessageInitShape<typeof ExposePortResponseSchema>> {
  const proxy = await deps.exposer.expose(req.port, req.address || undefined, req.targetHost || undefined);
  return { proxy: proxyInfo(proxy) };
}

/** Proxy.UnexposePort: removes the forward; the auto-exposer skips the port until its listener goes. */
export async function unexposePort(deps: ProxyServiceDeps, req: UnexposePortRequest): Promise<MessageInitShape<typeof UnexposePortResponseSchema>> {
  await deps.exposer.unexpose(req.port);
  return {};
}
