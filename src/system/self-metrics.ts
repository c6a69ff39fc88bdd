import { readFileSync } from "node:fs";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { DAEMON_VERSION, ENVD_COMPAT_VERSION } from "../config.js";
import { openFdCount } from "./host-metrics.js";
import type { MetricsRegistry } from "./metrics-registry.js";

const START_SECONDS = Math.round(Date.now() / 1000 - process.uptime());

function procStatField(index: number): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // Fields after the command name, which may itself contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[index - 3] ?? 0);
  } catch {
    return 0;
  }
}

function maxFds(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m?.[1] === "unlimited" ? Infinity : Number(m?.[1] ?? 0);
  } catch {
    return 0;
  }
}

let loopDelay: IntervalHistogram | undefined;

/**
 * The daemon's own CPU, memory, descriptors and event-loop delay, under the names prom-client's
 * default metrics use (process_*, nodejs_*), so existing dashboards work unchanged.
 */
export function registerSelfMetrics(registry: MetricsRegistry): void {
  registry.registerGauge("envd_info", "envd-ts version and the envd protocol version it implements", () => [
    { labels: { version: DAEMON_VERSION, envd_version: ENVD_COMPAT_VERSION, node_version: process.version }, value: 1 },
  ]);
  registry.registerCounter("process_cpu_user_seconds_total", "User CPU time the daemon spent, in seconds", () => process.cpuUsage().user / 1e6);
  registry.registerCounter("process_cpu_system_seconds_total", "System CPU time the daemon spent, in seconds", () => process.cpuUsage().system / 1e6);
  registry.registerCounter("process_cpu_seconds_total", "User and system CPU time the daemon spent, in seconds", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  registry.registerGauge("process_start_time_seconds", "When the daemon started, in Unix seconds", () => START_SECONDS);
  registry.registerGauge("process_resident_memory_bytes", "Resident memory of the daemon, in bytes", () => process.memoryUsage.rss());
  registry.registerGauge("process_virtual_memory_bytes", "Virtual memory of the daemon, in bytes", () => procStatField(23));
  registry.registerGauge("process_open_fds", "File descriptors the daemon holds open", () => openFdCount());
  registry.registerGauge("process_max_fds", "The daemon's open file descriptor limit", () => maxFds());
  registry.registerGauge("nodejs_heap_size_total_bytes", "V8 heap size, in bytes", () => process.memoryUsage().heapTotal);
  registry.registerGauge("nodejs_heap_size_used_bytes", "V8 heap in use, in bytes", () => process.memoryUsage().heapUsed);
  registry.registerGauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JavaScript (buffers), in bytes", () => process.memoryUsage().external);
  // Both lag gauges come from one snapshot per scrape; each scrape starts a new window.
  let lagWindow: { at: number; p99: number; max: number } | undefined;
  const lag = () => {
    // Measured from the first scrape on: the monitor's timer wakes the daemon every 20 ms and
    // its histogram holds ~350 KiB, which an idle daemon nobody scrapes should not pay.
    if (!loopDelay) {
      loopDelay = monitorEventLoopDelay({ resolution: 20 });
      loopDelay.enable();
    }
    const delay = loopDelay;
    const now = Date.now();
    if (!lagWindow || now - lagWindow.at > 1000) {
      lagWindow = { at: now, p99: delay.count > 0 ? delay.percentile(99) / 1e9 : 0, max: delay.count > 0 ? delay.max / 1e9 : 0 };
      delay.reset();
    }
    return lagWindow;
  };
  registry.registerGauge("nodejs_eventloop_lag_p99_seconds", "99th percentile event-loop delay since the previous scrape, in seconds", () => lag().p99);
  registry.registerGauge("nodejs_eventloop_lag_max_seconds", "Largest event-loop delay since the previous scrape, in seconds", () => lag().max);
}
