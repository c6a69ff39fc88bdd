import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { HttpRequest } from "../http/types.js";
import { formatHostPort } from "./address.js";
import type { HttpTarget } from "./proxy-spec.js";

/** Headers that describe one connection (RFC 9110 §7.6.1), never forwarded as they are. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "http2-settings"]);

/** How the proxy in front of the upstream should rewrite a request's headers. */
export interface ForwardHeaderOptions {
  /** "http" or "https": what the client spoke to us. */
  proto: string;
  /** Keep the client's Host instead of the target's host:port. */
  preserveHost: boolean;
  /** Further headers to drop (lower case), e.g. the daemon's access token. */
  drop?: readonly string[];
  /** Headers to add or replace. */
  set?: Record<string, string>;
}

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const c = headers["connection"];
  const tokens = new Set<string>();
  for (const part of (Array.isArray(c) ? c.join(",") : (c ?? "")).split(",")) {
    const t = part.trim().toLowerCase();
    if (t) tokens.add(t);
  }
  return tokens;
}

/** The host a client asked for: Host over HTTP/1.1, :authority over HTTP/2. */
export function requestHost(req: HttpRequest): string | undefined {
  const h = req.headers["host"] ?? req.headers[":authority"];
  return Array.isArray(h) ? h[0] : h;
}

function targetHost(target: HttpTarget): string {
  const defaultPort = target.protocol === "https:" ? 443 : 80;
  return target.port === defaultPort ? formatHostPort(target.host, target.port).replace(/:\d+$/, "") : formatHostPort(target.host, target.port);
}

/**
 * The headers to send upstream: hop-by-hop headers and those the Connection header names
 * are removed (HTTP/2 pseudo-headers too), Host is set, X-Forwarded-For is appended to and
 * X-Forwarded-Proto and X-Forwarded-Host are set. `keepUpgrade` keeps Upgrade for WebSocket.
 */
export function upstreamHeaders(req: HttpRequest, target: HttpTarget, opts: ForwardHeaderOptions, keepUpgrade = false): OutgoingHttpHeaders {
  const named = connectionTokens(req.headers);
  const drop = new Set(opts.drop ?? []);
  const out: OutgoingHttpHeaders = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined || key.startsWith(":") || HOP_BY_HOP.has(key) || named.has(key) || drop.has(key) || key === "host" || key === "expect") continue;
    out[key] = value;
  }
  const host = requestHost(req);
  out["host"] = opts.preserveHost && host ? host : targetHost(target);
  const client = req.socket?.remoteAddress;
  if (client) {
    const prior = req.headers["x-forwarded-for"];
    out["x-forwarded-for"] = prior ? `${Array.isArray(prior) ? prior.join(", ") : prior}, ${client}` : client;
  }
  out["x-forwarded-proto"] = opts.proto;
  if (host) out["x-forwarded-host"] = host;
  if (keepUpgrade && req.headers["upgrade"]) {
    out["connection"] = "Upgrade";
    out["upgrade"] = req.headers["upgrade"];
  }
  Object.assign(out, opts.set ?? {});
  return out;
}

/** The upstream's response headers minus hop-by-hop ones, fit for HTTP/1.1 and HTTP/2 clients. */
export function downstreamHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(key) || named.has(key)) continue;
    out[key] = value;
  }
  return out;
}

/** Serialises a request head for a raw upstream socket (used for upgrades). */
export function requestHead(method: string, path: string, headers: OutgoingHttpHeaders): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) head += `${key}: ${String(v).replace(/[\r\n]/g, "")}\r\n`;
  }
  return head + "\r\n";
}
