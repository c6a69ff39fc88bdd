import type { DaemonContext } from "../daemon-context.js";
import type { RouteHandler } from "../http/types.js";
import { composeRoute } from "./compose.js";
import { downloadRoute } from "./download.js";
import { uploadRoute } from "./upload.js";

/**
 * The /files HTTP API: download, upload, compose (docs/protocol.md, "HTTP API"). GET and
 * POST /files check tokens and signatures themselves (the server exempts them);
 * /files/compose is token-only.
 */
export function filesRoutes(ctx: DaemonContext): Record<string, RouteHandler> {
  return {
    "GET /files": downloadRoute(ctx),
    "POST /files": uploadRoute(ctx),
    "POST /files/compose": composeRoute(ctx),
  };
}
