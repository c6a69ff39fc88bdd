import type { Capability } from "../server.js";
import { registerReflection } from "./reflection-service.js";

/** gRPC server reflection (v1 and v1alpha), so `grpcurl -plaintext host:49983 list` works. */
export function reflectionCapability(): Capability {
  return { rpc: (router) => registerReflection(router) };
}
