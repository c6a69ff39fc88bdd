import { Agent } from "node:http";
import type { IncomingMessage } from "node:http";
import { Socket, isIP } from "node:net";
import type { Duplex } from "node:stream";
import type { DaemonContext } from "../daemon-context.js";
import { HttpError } from "../http/respond.js";
import type { HttpRequest, HttpResponse } from "../http/types.js";
import { forwardRequest, type ForwardContext } from "./forward-request.js";
import { forwardUpgrade, rawAnswer } from "./forward-upgrade.js";
import { DEFAULT_TUNING } from "./proxy-spec.js";

/** The path prefix the daemon forwards: /proxy/<port>/<rest> → http://127.0.0.1:<port>/<rest>. */
export const GATEWAY_PREFIX = "/proxy/";

const GATEWAY_HOST = "127.0.0.1";
/** Daemon credentials never travel to the sandboxed service. */
const DAEMON_HEADERS = ["x-access-token"];

interface GatewayPath {
  port: number;
  /** The upstream path with its query, raw as the client sent it. */
  path: string;
  /** "/proxy/<port>", told to the upstream as X-Forwarded-Prefix. */
  prefix: string;
}

/** Splits a raw request URL; undefined path means "/proxy/<port>" without a slash (redirected). */
function parseGatewayUrl(rawUrl: string): { port: number; path: string | undefined; prefix: string; query: string } | undefined {
  const m = /^\/proxy\/(\d{1,5})(\/[^?]*)?(\?.*)?$/.exec(rawUrl);
  if (!m) return undefined;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return undefined;
  return { port, path: m[2], prefix: `/proxy/${port}`, query: m[3] ?? "" };
}

/**
 * Whether 127.0.0.1:<port> is the daemon itself: the port the request came in on, with the daemon
 * listening on every address or on loopback. Forwarding there would loop, and one long URL
 * (/proxy/P/proxy/P/...) would hold a connection per level.
 */
function isDaemonItself(port: number, req: { socket?: { localPort?: number } }, listenAddress: string): boolean {
  if (port !== req.socket?.localPort) return false;
  if (isIP(listenAddress) === 0) return true;
  return listenAddress === "0.0.0.0" || listenAddress === "::" || listenAddress.startsWith("127.") || listenAddress === "::1" || listenAddress.startsWith("::ffff:127.");
}

function selfLoopMessage(port: number): string {
  return `the gateway does not forward to port ${port}: that is the daemon's own port, and the request would come back to it`;
}

function resolve(rawUrl: string): GatewayPath | { redirect: string } {
  const p = parseGatewayUrl(rawUrl);
  if (!p) throw new HttpError(400, `gateway paths look like /proxy/<port>/<path> with a port of 1..65535; got '${rawUrl.split("?")[0]}'`);
  if (p.path === undefined) return { redirect: `${p.prefix}/${p.query}` };
  return { port: p.port, path: p.path + p.query, prefix: p.prefix };
}

/** The daemon's HTTP and WebSocket gateway to services inside the sandbox. */
export interface Gateway {
  handle(req: HttpRequest, res: HttpResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

/**
 * The gateway: a client that can reach only the daemon's port reaches a dev server on
 * 127.0.0.1:<port> through /proxy/<port>/... . The daemon's own access-token check runs first
 * (in server.ts); the X-Access-Token header is not forwarded.
 */
export function createGateway(ctx: DaemonContext): Gateway {
  const agent = new Agent({ keepAlive: true, maxFreeSockets: 64, scheduling: "lifo" });
  const forwardContext = (req: HttpRequest, prefix: string, port: number): ForwardContext => ({
    target: { protocol: "http:", host: GATEWAY_HOST, port, basePath: "" },
    tuning: DEFAULT_TUNING,
    agent,
    headers: {
      proto: (req.headers["x-forwarded-proto"] as string | undefined) === "https" ? "https" : "http",
      preserveHost: false,
      drop: DAEMON_HEADERS,
      set: { "x-forwarded-prefix": prefix },
    },
    onError: (err) => ctx.log.debug({ port, err: err.message }, "gateway request failed"),
  });

  return {
    handle(req, res) {
      const where = resolve(req.url ?? "/");
      if ("redirect" in where) {
        res.writeHead(308, { location: where.redirect, "content-length": 0 });
        res.end();
        return;
      }
      if (isDaemonItself(where.port, req as never, ctx.config.listenAddress)) throw new HttpError(400, selfLoopMessage(where.port));
      forwardRequest(req, res, where.path, forwardContext(req, where.prefix, where.port));
    },
    upgrade(req, socket, head) {
      socket.on("error", () => {});
      // The daemon's sockets do not allow half-open; a relayed stream must, to pass a FIN on.
      if (socket instanceof Socket) socket.allowHalfOpen = true;
      const p = parseGatewayUrl(req.url ?? "/");
      if (!p || p.path === undefined) {
        rawAnswer(socket, 400, "Bad Request", "gateway upgrades go to /proxy/<port>/<path> with a port of 1..65535");
        return;
      }
      if (isDaemonItself(p.port, req, ctx.config.listenAddress)) {
        rawAnswer(socket, 400, "Bad Request", selfLoopMessage(p.port));
        return;
      }
      forwardUpgrade(req, socket, head, p.path + p.query, forwardContext(req, p.prefix, p.port));
    },
    close() {
      agent.destroy();
    },
  };
}
