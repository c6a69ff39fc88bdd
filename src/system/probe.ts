import { request } from "node:http";

const PROBE_TIMEOUT_MS = 2000;

/** The address a local probe reaches a daemon listening on `listen` at. */
function probeHost(listen: string): string {
  if (listen === "0.0.0.0" || listen === "") return "127.0.0.1";
  if (listen === "::") return "::1";
  return listen;
}

/**
 * GET /health of the daemon on this machine: true on 2xx within 2 s. Used by `envd --probe`
 * (a container HEALTHCHECK with no curl in the image).
 */
export function probeHealth(port: number, listen: string): Promise<{ healthy: boolean; detail: string }> {
  return new Promise((resolve) => {
    const req = request({ host: probeHost(listen), port, path: "/health", method: "GET", timeout: PROBE_TIMEOUT_MS, agent: false }, (res) => {
      res.resume();
      const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
      resolve({ healthy: ok, detail: `GET /health: ${res.statusCode}` });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on("error", (err) => resolve({ healthy: false, detail: `GET /health: ${err.message}` }));
    req.end();
  });
}
