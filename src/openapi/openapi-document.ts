import { DAEMON_VERSION, ENVD_COMPAT_VERSION } from "../config.js";
import { paths } from "./paths.js";
import { components } from "./schemas.js";

/** The OpenAPI 3.1 description of the daemon's REST routes (RPCs are found by gRPC reflection). */
export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "envd-ts",
    version: DAEMON_VERSION,
    description:
      `The REST side of envd-ts, a drop-in replacement for E2B's envd (protocol ${ENVD_COMPAT_VERSION}). ` +
      "The process and filesystem APIs and envd-ts's extensions are Connect/gRPC services on the same port: list them with gRPC reflection (`grpcurl -plaintext host:49983 list`).",
    license: { name: "Apache-2.0", identifier: "Apache-2.0" },
  },
  servers: [{ url: "http://localhost:49983" }],
  security: [{ AccessToken: [] }],
  tags: [
    { name: "system", description: "Health, metrics, environment, initialisation" },
    { name: "files", description: "Streaming file transfer" },
    { name: "gateway", description: "HTTP and WebSocket access to services inside the sandbox" },
    { name: "terminal", description: "A shell in the browser" },
    { name: "internal", description: "E2B orchestrator endpoints" },
  ],
  paths,
  components,
};
