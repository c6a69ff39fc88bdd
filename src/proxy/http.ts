import { Agent as HttpAgent, createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Agent as HttpsAgent, createServer as createHttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { authChallenge, checkClientAuth } from "./client-auth.js";
import { forwardRequest, type ForwardContext } from "./forward-request.js";
import { forwardUpgrade, rawAnswer } from "./forward-upgrade.js";
import { closeServer, listenOn, type ListenerContext, type ProxyListener } from "./listener.js";

/** Keep-alive upstream connections kept per proxy. */
const MAX_FREE_SOCKETS = 64;

/**
 * An HTTP reverse proxy (HTTPS when the spec carries a certificate: TLS ends here) that
 * forwards requests and upgrades to the spec's target. WebSocket proxies answer plain
 * requests with 426 and forward only upgrades.
 */
export async function startHttpProxy({ spec, counters, log }: ListenerContext): Promise<ProxyListener> {
  const t = spec.tuning;
  const agentOpts = { keepAlive: true, maxFreeSockets: MAX_FREE_SOCKETS, scheduling: "lifo" as const };
  const agent = spec.target.protocol === "https:" ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
  const serverOpts = { keepAliveTimeout: 5_000, requestTimeout: 0, headersTimeout: 60_000, highWaterMark: t.bufferSize };
  const server = spec.tls ? createHttpsServer({ ...serverOpts, cert: spec.tls.cert, key: spec.tls.key }) : createHttpServer(serverOpts);
  const proto = spec.tls ? "https" : "http";

  const context = (drop: string | undefined): ForwardContext => ({
    target: spec.target,
    tuning: t,
    agent,
    headers: { proto, preserveHost: t.preserveHost, drop: drop ? [drop] : [] },
    onError: (err) => {
      counters.errors++;
      log.debug({ proxy: spec.id, err: err.message }, "http proxy request failed");
    },
  });

  /** The header that carried our credentials, "" when none are configured, undefined when refused. */
  const authorize = (req: IncomingMessage): string | undefined => {
    if (!spec.auth) return "";
    return checkClientAuth(spec.auth, req.headers);
  };

  server.on("connection", (socket) => counters.track(socket));
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    counters.requests++;
    const used = authorize(req);
    if (used === undefined) {
      res.writeHead(401, { "www-authenticate": authChallenge(spec.auth!), "content-type": "text/plain; charset=utf-8" });
      res.end("proxy: authentication required\n");
      return;
    }
    if (spec.kind === "websocket") {
      res.writeHead(426, { upgrade: "websocket", connection: "Upgrade", "content-type": "text/plain; charset=utf-8" });
      res.end("proxy: this endpoint only accepts WebSocket upgrades\n");
      return;
    }
    forwardRequest(req, res, spec.target.basePath + (req.url ?? "/"), context(used || undefined));
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    counters.requests++;
    socket.on("error", () => {});
    const used = authorize(req);
    if (used === undefined) {
      rawAnswer(socket, 401, "Unauthorized", "proxy: authentication required", { "WWW-Authenticate": authChallenge(spec.auth!) });
      return;
    }
    forwardUpgrade(req, socket, head, spec.target.basePath + (req.url ?? "/"), context(used || undefined));
  });
  server.on("clientError", (err, socket) => {
    counters.errors++;
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    else socket.destroy();
    log.debug({ proxy: spec.id, err: err.message }, "http proxy client error");
  });
  server.on("tlsClientError", (err) => {
    counters.errors++;
    log.debug({ proxy: spec.id, err: err.message }, "https proxy handshake failed");
  });
  server.on("error", (err) => log.error({ proxy: spec.id, err: err.message }, "http proxy listener failed"));

  const boundAddress = await listenOn(server, spec.local);
  return {
    boundAddress,
    async close() {
      const closed = closeServer(server);
      counters.destroyAll();
      agent.destroy();
      await closed;
    },
  };
}
