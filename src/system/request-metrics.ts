import type { Socket } from "node:net";
import { metrics, type MetricsRegistry } from "./metrics-registry.js";

/** What the server knows about a finished request, from its log line. */
export interface FinishedRequest {
  method: string;
  /** The route it matched ("/files", "/process.Process/Start", "/proxy/*"), or "unmatched". */
  route: string;
  status: number;
  /** Connect code name for RPCs ("ok", "not_found", ...). */
  code: string | undefined;
  seconds: number;
  /** The response was cut off before it finished. */
  aborted: boolean;
}

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]);

/**
 * Per-route request counters and latency histograms, and the bytes and connections of the
 * daemon's port. Labels are route patterns, never raw paths, so a client cannot grow the
 * number of series.
 */
export class RequestMetrics {
  private readonly requests;
  private readonly durations;
  private readonly rpcs;
  private readonly errors;
  private readonly live = new Set<Socket>();
  private closedRead = 0;
  private closedWritten = 0;
  private connections = 0;

  constructor(registry: MetricsRegistry) {
    this.requests = registry.counter("envd_http_requests_total", "HTTP requests (REST, RPC, gateway) by route and status", ["method", "route", "status"]);
    this.durations = registry.histogram("envd_http_request_duration_seconds", "Time from request to response end (whole stream for streaming RPCs)", ["method", "route"]);
    this.rpcs = registry.counter("envd_rpc_requests_total", "RPCs by procedure and Connect code", ["procedure", "code"]);
    this.errors = registry.counter("envd_errors_total", "Failed requests: 5xx answers, RPC errors other than canceled, responses cut off", ["kind", "route"]);
    registry.registerCounter("envd_http_received_bytes_total", "Bytes the daemon's port received, headers included", () => this.bytes().read);
    registry.registerCounter("envd_http_sent_bytes_total", "Bytes the daemon's port sent (responses, streams, WebSocket), headers included", () => this.bytes().written);
    registry.registerCounter("envd_http_connections_total", "TCP connections accepted on the daemon's port", () => this.connections);
    registry.registerGauge("envd_http_connections_active", "Open TCP connections on the daemon's port", () => this.live.size);
  }

  /** Counts one finished request. */
  record(r: FinishedRequest): void {
    const method = KNOWN_METHODS.has(r.method) ? r.method : "OTHER";
    this.requests.inc({ method, route: r.route, status: String(r.status) });
    this.durations.observe({ method, route: r.route }, r.seconds);
    if (r.code !== undefined) {
      this.rpcs.inc({ procedure: r.route, code: r.code });
      if (r.code !== "ok" && r.code !== "canceled") this.errors.inc({ kind: "rpc", route: r.route });
    } else if (r.status >= 500) this.errors.inc({ kind: "http_5xx", route: r.route });
    if (r.aborted && r.code === undefined) this.errors.inc({ kind: "aborted", route: r.route });
  }

  /** Counts a connection's bytes from the socket's own counters: nothing is paid per chunk. */
  track(socket: Socket): void {
    this.connections++;
    this.live.add(socket);
    socket.once("close", () => {
      this.live.delete(socket);
      this.closedRead += socket.bytesRead;
      this.closedWritten += socket.bytesWritten;
    });
  }

  private bytes(): { read: number; written: number } {
    let read = this.closedRead;
    let written = this.closedWritten;
    for (const s of this.live) {
      read += s.bytesRead;
      written += s.bytesWritten;
    }
    return { read, written };
  }
}

/** The request metrics of the daemon's one server. */
export const requestMetrics = new RequestMetrics(metrics);
