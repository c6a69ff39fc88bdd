import type { Logger } from "../../log.js";
import type { PortExposer } from "../port-exposure.js";
import type { ProxyRegistry } from "../registry.js";

/** What the Proxy service's RPCs work with. */
export interface ProxyServiceDeps {
  registry: ProxyRegistry;
  exposer: PortExposer;
  log: Logger;
}
