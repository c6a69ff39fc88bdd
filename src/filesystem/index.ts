import type { DaemonContext } from "../daemon-context.js";
import type { Capability } from "../server.js";

/** The filesystem.Filesystem service, its envd-ts extensions and the /files HTTP API. */
export function filesystemCapability(ctx: DaemonContext): Capability {
  void ctx;
  return {};
}
