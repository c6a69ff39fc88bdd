import type { Capability } from "../server.js";
import { metrics } from "./metrics-registry.js";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheusText } from "./prometheus-text.js";
import { registerHealthMetrics } from "./health.js";
import { registerSelfMetrics } from "./self-metrics.js";

/** Where operators scrape; E2B's JSON GET /metrics stays as it is. */
export const PROMETHEUS_PATH = "/metrics/prometheus";

/** GET /metrics/prometheus: every registered metric in Prometheus text format (token required when set). */
export function prometheusCapability(): Capability {
  registerSelfMetrics(metrics);
  registerHealthMetrics(metrics);
  return {
    rest: {
      [`GET ${PROMETHEUS_PATH}`]: (_req, res) => {
        const body = renderPrometheusText(metrics.collect());
        res.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
        res.end(body);
      },
    },
  };
}
