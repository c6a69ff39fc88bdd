import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

/** Where the daemon is and who the calls act as. */
export interface EnvdTarget {
  /** The daemon's base URL, e.g. "http://127.0.0.1:49983" or the sandbox's envd URL. */
  url: string;
  /** The daemon's access token (X-Access-Token), when it has one. */
  accessToken?: string;
  /** The sandbox user the calls act as (HTTP Basic user, as the E2B SDK sends it); unset: the daemon's default user. */
  user?: string;
  /** More headers for every call (an E2B sandbox's routing headers, for one). */
  headers?: Record<string, string>;
}

/** Options of the transport beneath the client. */
export interface TransportOptions {
  /** "1.1" (default: each stream its own connection, works through any proxy) or "2" (h2c or TLS). */
  httpVersion?: "1.1" | "2";
  /**
   * Seconds between the daemon's keepalive messages on streams (Keepalive-Ping-Interval), so that
   * proxies in between do not close an idle attach or usage stream. Default 50, as the E2B SDK sends.
   */
  keepaliveSeconds?: number;
}

/** Basic auth with an empty password names the user, as E2B's SDKs do. */
function basicUser(user: string): string {
  return `Basic ${Buffer.from(`${user}:`).toString("base64")}`;
}

/** A Connect transport (binary protobuf) that sends the target's token, user and headers on every call. */
export function createEnvdTransport(target: EnvdTarget, options: TransportOptions = {}): Transport {
  const keepalive = String(options.keepaliveSeconds ?? 50);
  const identity: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(target.headers ?? {})) req.header.set(k, v);
    if (target.accessToken) req.header.set("X-Access-Token", target.accessToken);
    if (target.user && !req.header.has("Authorization")) req.header.set("Authorization", basicUser(target.user));
    if (req.stream && !req.header.has("Keepalive-Ping-Interval")) req.header.set("Keepalive-Ping-Interval", keepalive);
    return next(req);
  };
  const baseUrl = target.url.replace(/\/+$/, "");
  if (options.httpVersion === "2") {
    return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors: [identity] });
  }
  return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true, interceptors: [identity] });
}

/**
 * What connect() reads from an `e2b` Sandbox (JS SDK 1.x and 2.x). The fields are private to the
 * SDK's typings but plain properties at run time: the same URL, token and routing headers the
 * SDK's own envd clients use.
 */
interface E2BSandboxShape {
  sandboxId: string;
  sandboxDomain?: string;
  envdApiUrl?: string;
  envdAccessToken?: string;
  envdPort?: number;
  connectionConfig?: {
    headers?: Record<string, string>;
    getSandboxUrl?: (sandboxId: string, opts: { sandboxDomain?: string; envdPort: number }) => string;
  };
}

/** Whether a value looks like an `e2b` Sandbox rather than an EnvdTarget. */
export function isSandbox(value: unknown): value is { sandboxId: string } {
  return typeof value === "object" && value !== null && typeof (value as { sandboxId?: unknown }).sandboxId === "string" && !("url" in value);
}

/** The target an `e2b` Sandbox's envd clients talk to. */
export function targetOfSandbox(sandbox: { sandboxId: string }, user?: string): EnvdTarget {
  const s = sandbox as E2BSandboxShape;
  const envdPort = s.envdPort ?? 49983;
  const url = s.envdApiUrl ?? s.connectionConfig?.getSandboxUrl?.(s.sandboxId, { sandboxDomain: s.sandboxDomain, envdPort });
  if (!url) throw new TypeError("connect(): the sandbox has no envd URL (envdApiUrl); is it an e2b Sandbox?");
  const headers: Record<string, string> = { "E2b-Sandbox-Id": s.sandboxId, "E2b-Sandbox-Port": String(envdPort) };
  const ua = s.connectionConfig?.headers?.["User-Agent"];
  if (ua) headers["User-Agent"] = ua;
  return { url, accessToken: s.envdAccessToken, user, headers };
}
