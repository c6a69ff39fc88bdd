import type { DaemonContext } from "../../daemon-context.js";
import type { ProcessRegistry } from "../registry.js";

/** What every process RPC handler is given. */
export interface RpcDeps {
  ctx: DaemonContext;
  registry: ProcessRegistry;
}
