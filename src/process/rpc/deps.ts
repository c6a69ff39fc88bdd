import type { DaemonContext } from "../../daemon-context.js";
import type { ExecutionPolicy } from "../../isolation/policy.js";
import type { ProcessRegistry } from "../registry.js";

/** What every process RPC handler is given. */
export interface RpcDeps {
  ctx: DaemonContext;
  registry: ProcessRegistry;
  /** Default limits and hardening, and how requests may change them. */
  policy: ExecutionPolicy;
}
