import type { HttpRequest, HttpResponse } from "./types.js";

const EXPOSED = [
  "Content-Encoding",
  "Connect-Content-Encoding",
  "Grpc-Status",
  "Grpc-Message",
  "Grpc-Status-Details-Bin",
  "Location",
  "Cache-Control",
  "X-Content-Type-Options",
].join(", ");
const METHODS = "HEAD, GET, POST, PUT, PATCH, DELETE";

/**
 * CORS as E2B's envd configures rs/cors: any origin, any header, 7200 s max age.
 * Returns true when the request was a preflight and has been answered.
 */
export function applyCors(req: HttpRequest, res: HttpResponse): boolean {
  const origin = req.headers["origin"];
  if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
    res.setHeader("vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    if (origin) {
      const method = String(req.headers["access-control-request-method"]).toUpperCase();
      if (METHODS.split(", ").includes(method)) {
        res.setHeader("access-control-allow-origin", "*");
        res.setHeader("access-control-allow-methods", method);
        const requested = req.headers["access-control-request-headers"];
        if (requested) res.setHeader("access-control-allow-headers", String(requested));
        res.setHeader("access-control-max-age", "7200");
      }
    }
    res.writeHead(204);
    res.end();
    return true;
  }
  if (origin) {
    res.setHeader("vary", "Origin");
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-expose-headers", EXPOSED);
  }
  return false;
}
