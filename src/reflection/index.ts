import type { Capability } from "../server.js";

/**
 * gRPC server reflection (v1 and v1alpha), so `grpcurl -plaintext host:49983 list` works.
 * Loaded at its first request, with the descriptors of every service.
 */
export function reflectionCapability(): Capability {
  return {
    lazyRpc: [
      {
        typeNames: ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"],
        load: async () => {
          const { registerReflection } = await import("./reflection-service.js");
          return (router, loadAll) => registerReflection(router, loadAll);
        },
      },
    ],
  };
}
