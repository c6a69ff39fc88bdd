import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createHttp1Server, type IncomingMessage } from "node:http";
import { createServer as createHttp2Server, type ServerHttp2Session } from "node:http2";
import { Code, ConnectError, createContextValues, type ConnectRouter } from "@connectrpc/connect";
import type { DaemonContext } from "./daemon-context.js";
import { rejectUnknownBasicUser, unknownBasicUser } from "./auth/request-user.js";
import { connectHandler, type LazyServices } from "./http/connect-adapter.js";
import { ConnectionGuard, autoMaxConnections } from "./http/connection-guard.js";
import { applyCors } from "./http/cors.js";
import { HttpError, sendEmpty, sendJsonError, sendText } from "./http/respond.js";
import { endStreamsOnShutdown, loggedRpcCode, recordRpcCode, rpcLogKey, type RpcLogInfo } from "./http/rpc-interceptors.js";
import type { HttpRequest, HttpResponse, RouteHandler, UpgradeHandler } from "./http/types.js";
import { serveWithoutUpgrade } from "./http/upgrade.js";
import { requestMetrics } from "./system/request-metrics.js";

/** A capability plugs RPC services and REST routes into the one server. */
export interface Capability {
  rpc?(router: ConnectRouter): void;
  /** Services registered at their first request (see LazyServices). */
  lazyRpc?: LazyServices[];
  /** Keyed "METHOD /path". */
  rest?: Record<string, RouteHandler>;
  /** Keyed by path prefix ("/proxy/"), any method; tried when no exact route matches. */
  prefixRoutes?: Record<string, RouteHandler>;
  /** HTTP/1.1 upgrade requests (WebSocket) by path prefix; other upgrades are served as plain requests. */
  upgradeRoutes?: Record<string, UpgradeHandler>;
  /**
   * Route keys ("GET /terminal") and upgrade prefixes whose handlers check the access token
   * themselves, because browsers cannot send X-Access-Token on a page load or a WebSocket.
   */
  ownTokenCheck?: string[];
  /** Called on shutdown, after streams were told to end. */
  close?(): Promise<void> | void;
}

/** Routes that need no access token even when one is set (E2B's exceptions). */
const TOKEN_EXEMPT = new Set(["GET /health", "GET /files", "POST /files", "POST /init"]);
const RPC_PATH = /^\/[a-zA-Z_][\w.]*\.[A-Z]\w*\/[A-Z]\w*$/;
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const IDLE_TIMEOUT_MS = 640_000;
const HEADERS_TIMEOUT_MS = 60_000;
const PREFACE_TIMEOUT_MS = HEADERS_TIMEOUT_MS;

/** Every route the capabilities serve: "METHOD /path" keys, and path prefixes for prefix and upgrade routes. */
export interface RouteTable {
  rest: string[];
  prefix: string[];
  upgrade: string[];
}

/** The route table of a capability list, sorted; the OpenAPI document is checked against it. */
export function listRoutes(capabilities: Capability[]): RouteTable {
  const keys = (pick: (cap: Capability) => Record<string, unknown> | undefined) => [...new Set(capabilities.flatMap((cap) => Object.keys(pick(cap) ?? {})))].sort();
  return { rest: keys((c) => c.rest), prefix: keys((c) => c.prefixRoutes), upgrade: keys((c) => c.upgradeRoutes) };
}

/** The listening server, as main sees it. */
export interface RunningServer {
  port: number;
  address: string;
  /** Registers the lazy services now (see warm-up.ts). */
  loadLazyServices(): Promise<void>;
  /** Stops accepting, ends streams, waits for responses, closes capabilities. */
  shutdown(graceMs?: number): Promise<void>;
}

/** Listens on config.port and serves every capability's RPCs and routes there, over HTTP/1.1 and h2c. */
export async function startServer(ctx: DaemonContext, capabilities: Capability[], shutdownController: AbortController): Promise<RunningServer> {
  const { config, state, log } = ctx;
  const routes = new Map<string, RouteHandler>();
  for (const cap of capabilities) for (const [key, handler] of Object.entries(cap.rest ?? {})) routes.set(key, handler);
  const prefixRoutes = capabilities.flatMap((cap) => Object.entries(cap.prefixRoutes ?? {}));
  const upgradeRoutes = capabilities.flatMap((cap) => Object.entries(cap.upgradeRoutes ?? {}));
  const ownTokenCheck = new Set(capabilities.flatMap((cap) => cap.ownTokenCheck ?? []));
  const rpcPaths = new Set<string>();
  let routesLogged = false;
  // Metrics are labelled by route pattern, never by the raw path a client sent.
  const routeLabel = (method: string | undefined, path: string): string => {
    if (routes.has(`${method} ${path}`) || rpcPaths.has(path)) return path;
    const prefix = prefixRoutes.find(([p]) => path.startsWith(p));
    return prefix ? `${prefix[0]}*` : "unmatched";
  };

  const rpcHandler = connectHandler({
    routes: (router) => {
      for (const cap of capabilities) cap.rpc?.(router);
    },
    lazy: capabilities.flatMap((cap) => cap.lazyRpc ?? []),
    onRegistered: (paths) => {
      paths.forEach((p) => rpcPaths.add(p));
      // The eager ones are in the route table below; lazy ones are logged as they arrive.
      if (routesLogged && paths.length) log.debug({ rpc: paths }, "rpc services registered");
    },
    readMaxBytes: config.maxMessageBytes,
    writeMaxBytes: config.maxMessageBytes,
    shutdownSignal: shutdownController.signal,
    // Outermost first: the log sees the shutdown and user errors the others raise.
    interceptors: [recordRpcCode(), endStreamsOnShutdown(shutdownController.signal), rejectUnknownBasicUser()],
    notFound: (_req, res) => sendText(res, 404, "404 page not found\n"),
    log,
  });

  const lazyServices = capabilities.flatMap((cap) => (cap.lazyRpc ?? []).flatMap((l) => l.typeNames));
  log.debug({ ...listRoutes(capabilities), rpc: [...rpcPaths].sort(), lazyServices }, "routes");
  routesLogged = true;

  // A connection that has not yet sent an authenticated request may stay open this long without one
  // in flight (headers dribbled slowly count as none); trusted ones keep IDLE_TIMEOUT_MS.
  const guard = new ConnectionGuard(config.maxConnections || autoMaxConnections(), config.unauthenticatedIdleSeconds * 1000, log);
  // The accepted socket under each h2c session (session.socket is a proxy object, not it).
  const sessionSockets = new WeakMap<ServerHttp2Session, Socket>();
  let acceptingH2: Socket | undefined;
  const rawSocket = (req: HttpRequest): Socket | undefined => ("stream" in req ? sessionSockets.get(req.stream.session as ServerHttp2Session) : req.socket);

  let nextRequestId = 1;
  // In-flight requests per HTTP/1.1 socket, so shutdown can close the idle ones.
  const inflight = new WeakMap<Socket, number>();
  const handle = (req: HttpRequest, res: HttpResponse): void => {
    const started = process.hrtime.bigint();
    const id = nextRequestId++;
    let rpc: RpcLogInfo | undefined;
    const sock = "stream" in req ? undefined : req.socket;
    if (sock) inflight.set(sock, (inflight.get(sock) ?? 0) + 1);
    const raw = rawSocket(req);
    guard.requestStarted(raw);
    res.on("close", () => {
      guard.requestEnded(raw);
      if (sock) inflight.set(sock, (inflight.get(sock) ?? 1) - 1);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const aborted = !res.writableFinished;
      const path = (req.url ?? "").split("?")[0]!;
      const code = loggedRpcCode(rpc, aborted);
      log.info({ req: id, method: req.method, path, status: res.statusCode, code, ms: Math.round(ms * 100) / 100, aborted: aborted || undefined }, "request");
      requestMetrics.record({ method: req.method ?? "", route: routeLabel(req.method, path), status: res.statusCode, code, seconds: ms / 1000, aborted });
    });
    // Keep-alive ends with the daemon: the client must not reuse this connection.
    if (sock && shutdownController.signal.aborted) res.setHeader("connection", "close");
    try {
      if (applyCors(req, res)) return;
      const url = new URL(req.url ?? "/", "http://localhost");
      const key = `${req.method} ${url.pathname}`;
      const tokenOk = !state.accessToken.isSet() || state.accessToken.matches(headerValue(req, "x-access-token"));
      if (tokenOk) guard.trust(raw);
      if (!tokenOk && !TOKEN_EXEMPT.has(key) && !ownTokenCheck.has(key)) {
        sendJsonError(res, 401, "unauthorized access, please provide a valid access token or method signing if supported");
        return;
      }
      if (RPC_PATH.test(url.pathname)) {
        rpc = {};
        rpcHandler(req, res, createContextValues().set(rpcLogKey, rpc));
        return;
      }
      // Prefix routes (the /proxy/<port>/ gateway) pass the client's Authorization on untouched.
      const prefixed = routes.has(key) ? undefined : prefixRoutes.find(([prefix]) => url.pathname.startsWith(prefix));
      if (prefixed) {
        Promise.resolve(prefixed[1](req, res, url)).catch((err) => failRequest(res, err));
        return;
      }
      const badUser = unknownBasicUser(headerValue(req, "authorization"));
      if (badUser) {
        // connect-go's ErrorWriter answer for a non-RPC request, as E2B's authn middleware sends it.
        const body = JSON.stringify({ code: "unauthenticated", message: badUser });
        res.writeHead(401, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      const route = routes.get(key);
      if (!route) {
        // chi's answers: 405 with an Allow list for a known path, else its text 404.
        const allowed = [...routes.keys()].filter((k) => k.slice(k.indexOf(" ") + 1) === url.pathname).map((k) => k.slice(0, k.indexOf(" ")));
        if (allowed.length) sendEmpty(res, 405, { allow: allowed.join(", ") });
        else sendText(res, 404, "404 page not found\n");
        return;
      }
      Promise.resolve(route(req, res, url)).catch((err) => failRequest(res, err));
    } catch (err) {
      failRequest(res, err);
    }
  };

  const failRequest = (res: HttpResponse, err: unknown): void => {
    if (err instanceof HttpError) {
      if (err.plain) {
        if (!res.headersSent) sendText(res, err.status, err.message);
        else res.destroy();
      } else sendJsonError(res, err.status, err.message);
      return;
    }
    log.error({ err }, "request failed");
    sendJsonError(res, 500, (err as Error)?.message ?? "internal error");
  };

  const http1 = createHttp1Server({ keepAliveTimeout: IDLE_TIMEOUT_MS, requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS }, handle);
  http1.keepAliveTimeout = IDLE_TIMEOUT_MS;
  const http2 = createHttp2Server({ maxSessionMemory: 64 }, handle);
  // Node's HTTP/1.1 server tracks connections (for headersTimeout) only once it is
  // "listening"; ours never listens itself, since the net server below hands it sockets.
  http1.emit("listening");
  http2.setTimeout(IDLE_TIMEOUT_MS);
  // An idle h2c session goes away politely (GOAWAY); streams still running are kept.
  http2.on("timeout", (session: ServerHttp2Session) => session.close());
  http1.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    log.debug({ err: err.message, code: err.code }, "bad http/1.1 request");
    if (socket.writable && !socket.destroyed) {
      const status = err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else socket.destroy();
  });
  http2.on("sessionError", (err) => log.debug({ err: err.message }, "bad http/2 session"));
  // WebSocket over HTTP/1.1 only; over h2c it would need RFC 8441 (extended CONNECT), not supported.
  http1.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const route = upgradeRoutes.find(([prefix]) => path.startsWith(prefix));
    if (!route) return serveWithoutUpgrade(http1, req, socket, head);
    // Taken over: busy until it closes, whatever is relayed over it.
    guard.hold(socket);
    if (!state.accessToken.isSet() || state.accessToken.matches(headerValue(req, "x-access-token"))) guard.trust(socket);
    log.info({ method: req.method, path, upgrade: req.headers.upgrade }, "upgrade");
    if (state.accessToken.isSet() && !ownTokenCheck.has(route[0]) && !state.accessToken.matches(headerValue(req, "x-access-token"))) {
      const body = JSON.stringify({ code: 401, message: "unauthorized access, please provide a valid access token or method signing if supported" }) + "\n";
      socket.end(`HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    route[1](req, socket, head);
  });

  const sockets = new Set<Socket>();
  const sessions = new Set<ServerHttp2Session>();
  http2.on("session", (session) => {
    if (acceptingH2) sessionSockets.set(session, acceptingH2);
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  const net: NetServer = createNetServer({ noDelay: true }, (socket) => {
    if (!guard.admit(socket)) return;
    sockets.add(socket);
    requestMetrics.track(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    dispatchByPreface(socket, http1, (s) => {
      // http2 emits "session" while handling "connection": this names the socket under it.
      acceptingH2 = s;
      try {
        http2.emit("connection", s);
      } finally {
        acceptingH2 = undefined;
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    net.once("error", reject);
    net.listen({ port: config.port, host: config.listenAddress }, () => {
      net.off("error", reject);
      resolve();
    });
  });
  const addr = net.address();
  const port = typeof addr === "object" && addr ? addr.port : config.port;

  return {
    port,
    address: config.listenAddress,
    loadLazyServices: rpcHandler.loadLazyServices,
    async shutdown(graceMs = 5000) {
      const deadline = Date.now() + graceMs;
      net.close();
      // Streams end with `unavailable` (see endStreamsOnShutdown); unary calls run to completion.
      shutdownController.abort(new ConnectError("daemon is shutting down", Code.Unavailable));
      for (const session of sessions) session.close();
      http1.close();
      const closing = Promise.allSettled(capabilities.map(async (cap) => cap.close?.()));
      await Promise.race([closing, new Promise((r) => setTimeout(r, graceMs).unref())]);
      for (;;) {
        for (const s of sockets) if (!(inflight.get(s) ?? 0) && !isHttp2Socket(s)) s.destroy();
        if (sockets.size === 0 || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const s of sockets) s.destroy();
      guard.close();
    },
  };
}

const h2Sockets = new WeakSet<Socket>();
function isHttp2Socket(s: Socket): boolean {
  return h2Sockets.has(s);
}

function headerValue(req: HttpRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * HTTP/1.1 and h2c (prior knowledge) share the port: the first bytes decide.
 * The bytes read to decide are put back before the chosen server sees the socket.
 */
function dispatchByPreface(socket: Socket, http1: ReturnType<typeof createHttp1Server>, toHttp2: (socket: Socket) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  // A client that never sends a byte is not kept forever; each server has its own timeouts after this.
  const onSilent = () => socket.destroy();
  socket.setTimeout(PREFACE_TIMEOUT_MS, onSilent);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    const isH2Prefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2Prefix && seen.length < H2_PREFACE.length) return;
    socket.off("data", onData);
    socket.setTimeout(0);
    socket.off("timeout", onSilent);
    socket.pause();
    socket.unshift(seen);
    if (isH2Prefix) {
      h2Sockets.add(socket);
      toHttp2(socket);
    }
    else http1.emit("connection", socket);
    process.nextTick(() => socket.resume());
  };
  socket.on("data", onData);
}
