import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createHttp1Server } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import { Code, ConnectError, createContextKey, createContextValues, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { DaemonContext } from "./daemon-context.js";
import { applyCors } from "./http/cors.js";
import { HttpError, sendJsonError, sendText } from "./http/respond.js";
import type { HttpRequest, HttpResponse, RouteHandler } from "./http/types.js";

/** A capability plugs RPC services and REST routes into the one server. */
export interface Capability {
  rpc?(router: ConnectRouter): void;
  /** Keyed "METHOD /path". */
  rest?: Record<string, RouteHandler>;
  /** Called on shutdown, after streams were told to end. */
  close?(): Promise<void> | void;
}

/** Routes that need no access token even when one is set (E2B's exceptions). */
const TOKEN_EXEMPT = new Set(["GET /health", "GET /files", "POST /files", "POST /init"]);
const RPC_PATH = /^\/[a-zA-Z_][\w.]*\.[A-Z]\w*\/[A-Z]\w*$/;
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const IDLE_TIMEOUT_MS = 640_000;

interface RequestLogInfo {
  rpcCode?: string;
}
const requestInfo = new WeakMap<object, RequestLogInfo>();

/** Records the Connect code of each RPC (including mid-stream errors) for the request log. */
function codeRecorder(): Interceptor {
  return (next) => async (req) => {
    const info = req.contextValues.get(infoKey);
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const message = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* message;
          } catch (err) {
            info.rpcCode = Code[ConnectError.from(err).code];
            throw err;
          }
        })(),
      };
    } catch (err) {
      info.rpcCode = Code[ConnectError.from(err).code];
      throw err;
    }
  };
}

const infoKey = createContextKey<RequestLogInfo>({}, { description: "request log info" });

export interface RunningServer {
  port: number;
  address: string;
  /** Stops accepting, ends streams, waits for responses, closes capabilities. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function startServer(ctx: DaemonContext, capabilities: Capability[], shutdownController: AbortController): Promise<RunningServer> {
  const { config, state, log } = ctx;
  const routes = new Map<string, RouteHandler>();
  for (const cap of capabilities) for (const [key, handler] of Object.entries(cap.rest ?? {})) routes.set(key, handler);

  const rpcHandler = connectNodeAdapter({
    routes: (router) => {
      for (const cap of capabilities) cap.rpc?.(router);
    },
    readMaxBytes: config.maxMessageBytes,
    writeMaxBytes: config.maxMessageBytes,
    shutdownSignal: shutdownController.signal,
    interceptors: [codeRecorder()],
    contextValues: (req) => {
      const values = createContextValues();
      const info = requestInfo.get(req) ?? {};
      values.set(infoKey, info);
      return values;
    },
  });

  let nextRequestId = 1;
  // In-flight requests per HTTP/1.1 socket, so shutdown can close the idle ones.
  const inflight = new WeakMap<Socket, number>();
  const handle = (req: HttpRequest, res: HttpResponse): void => {
    const started = process.hrtime.bigint();
    const id = nextRequestId++;
    const info: RequestLogInfo = {};
    requestInfo.set(req, info);
    const sock = "stream" in req ? undefined : req.socket;
    if (sock) inflight.set(sock, (inflight.get(sock) ?? 0) + 1);
    res.on("close", () => {
      if (sock) inflight.set(sock, (inflight.get(sock) ?? 1) - 1);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.info(
        { req: id, method: req.method, path: (req.url ?? "").split("?")[0], status: res.statusCode, code: info.rpcCode, ms: Math.round(ms * 100) / 100, aborted: !res.writableFinished || undefined },
        "request",
      );
    });
    try {
      if (applyCors(req, res)) return;
      const url = new URL(req.url ?? "/", "http://localhost");
      const key = `${req.method} ${url.pathname}`;
      if (state.accessToken.isSet() && !TOKEN_EXEMPT.has(key) && !state.accessToken.matches(headerValue(req, "x-access-token"))) {
        sendJsonError(res, 401, "unauthorized access, please provide a valid access token or method signing if supported");
        return;
      }
      if (RPC_PATH.test(url.pathname)) {
        rpcHandler(req as never, res as never);
        return;
      }
      const route = routes.get(key);
      if (!route) {
        const known = [...routes.keys()].some((k) => k.slice(k.indexOf(" ") + 1) === url.pathname);
        if (known) sendText(res, 405, "Method Not Allowed\n");
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

  const http1 = createHttp1Server({ keepAliveTimeout: IDLE_TIMEOUT_MS, requestTimeout: 0, headersTimeout: 60_000 }, handle);
  http1.keepAliveTimeout = IDLE_TIMEOUT_MS;
  const http2 = createHttp2Server({ maxSessionMemory: 64 }, handle);
  http2.setTimeout(IDLE_TIMEOUT_MS);
  http2.on("timeout", () => {});
  http1.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    log.debug({ err: err.message, code: err.code }, "bad http/1.1 request");
    if (socket.writable && !socket.destroyed) {
      const status = err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else socket.destroy();
  });
  http2.on("sessionError", (err) => log.debug({ err: err.message }, "bad http/2 session"));

  const sockets = new Set<Socket>();
  const sessions = new Set<import("node:http2").ServerHttp2Session>();
  http2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  const net: NetServer = createNetServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    dispatchByPreface(socket, http1, http2);
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
    async shutdown(graceMs = 5000) {
      net.close();
      shutdownController.abort(new ConnectError("daemon is shutting down", Code.Unavailable));
      for (const session of sessions) session.close();
      for (const cap of capabilities) await cap.close?.();
      const deadline = Date.now() + graceMs;
      for (;;) {
        for (const s of sockets) if (!(inflight.get(s) ?? 0) && !isHttp2Socket(s)) s.destroy();
        if (sockets.size === 0 || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const s of sockets) s.destroy();
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
function dispatchByPreface(socket: Socket, http1: ReturnType<typeof createHttp1Server>, http2: ReturnType<typeof createHttp2Server>): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    const isH2Prefix = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2Prefix && seen.length < H2_PREFACE.length) return;
    socket.off("data", onData);
    socket.pause();
    socket.unshift(seen);
    if (isH2Prefix) {
      h2Sockets.add(socket);
      http2.emit("connection", socket);
    }
    else http1.emit("connection", socket);
    process.nextTick(() => socket.resume());
  };
  socket.on("data", onData);
}
