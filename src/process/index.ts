import type { DaemonContext } from "../daemon-context.js";
import type { Capability } from "../server.js";

/** The process.Process service and its envd-ts extensions. */
export function processCapability(ctx: DaemonContext): Capability {
  void ctx;
  return {};
}
