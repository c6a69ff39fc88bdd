import type { MetricsRegistry, Sample } from "../system/metrics-registry.js";
import type { StatsSnapshot } from "./counters.js";
import type { ProxyRegistry } from "./registry.js";

/**
 * Proxy gauges and per-proxy traffic, read from the registry at scrape time. Returns the
 * function that removes them (the capability's close).
 */
export function registerProxyMetrics(metrics: MetricsRegistry, registry: ProxyRegistry): () => void {
  const perProxy = (pick: (s: StatsSnapshot) => number, extra: Record<string, string> = {}): Sample[] =>
    registry.list().map((p) => ({ labels: { proxy: p.spec.id, kind: p.spec.kind, ...extra }, value: pick(p.stats()) }));
  const removers = [
    metrics.registerGauge("envd_proxies_active", "Managed proxies running, by kind", () => {
      const byKind = new Map<string, number>();
      for (const p of registry.list()) byKind.set(p.spec.kind, (byKind.get(p.spec.kind) ?? 0) + 1);
      return [...byKind].map(([kind, value]) => ({ labels: { kind }, value }));
    }),
    metrics.registerGauge("envd_proxy_connections_active", "Open client connections (or UDP sessions) per proxy", () => perProxy((s) => s.activeConnections)),
    metrics.registerCounter("envd_proxy_connections_total", "Client connections (or UDP sessions) per proxy since it started", () => perProxy((s) => s.totalConnections)),
    metrics.registerCounter("envd_proxy_bytes_total", "Bytes relayed per proxy since it started, by direction", () => [
      ...perProxy((s) => s.bytesFromClients, { direction: "from_clients" }),
      ...perProxy((s) => s.bytesToClients, { direction: "to_clients" }),
    ]),
    metrics.registerCounter("envd_proxy_errors_total", "Upstream and relay errors per proxy", () => perProxy((s) => s.errors)),
  ];
  return () => removers.forEach((remove) => remove());
}
