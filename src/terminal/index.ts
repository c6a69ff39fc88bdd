import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { ConnectError } from "@connectrpc/connect";
import { WebSocket, WebSocketServer } from "ws";
import type { DaemonContext } from "../daemon-context.js";
import { sendJsonError, sendText } from "../http/respond.js";
import type { HttpResponse, RouteHandler } from "../http/types.js";
import type { ProcessCapability } from "../process/index.js";
import type { RpcDeps } from "../process/rpc/deps.js";
import type { Capability } from "../server.js";
import { metrics } from "../system/metrics-registry.js";
import { terminalAssets } from "./assets.js";
import { sameOrigin, terminalTokenSource, TOKEN_COOKIE } from "./auth.js";
import { TERMINAL_CSP, TERMINAL_HTML } from "./page-html.js";
import { TERMINAL_WS_PATH, type ServerMessage } from "./protocol.js";
import { runSession, sendMessage } from "./session.js";
import { startShell } from "./shell.js";

const UNAUTHORIZED = "unauthorized access, please provide a valid access token or method signing if supported";
const MAX_FRAME_BYTES = 1024 * 1024;
const DEFAULT_SIZE = { cols: 80, rows: 24 };

function rawAnswer(socket: Duplex, status: string, message: string): void {
  const body = JSON.stringify({ code: Number(status.split(" ")[0]), message }) + "\n";
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

function sendAsset(res: HttpResponse, body: string, type: string): void {
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  res.writeHead(200, { "content-type": type, "content-length": Buffer.byteLength(body), etag, "cache-control": "no-cache", "x-content-type-options": "nosniff" });
  res.end(body);
}

function sizeParam(url: URL, name: "cols" | "rows"): number {
  const v = Number(url.searchParams.get(name));
  return Number.isInteger(v) && v > 0 && v <= 10_000 ? v : DEFAULT_SIZE[name];
}

/**
 * The web terminal: GET /terminal (a page with xterm.js, bundled at build time) and the
 * WebSocket at /terminal/ws that runs a login shell on a PTY, or attaches to any PTY process
 * by pid with replay from a byte offset. Behind the access token when one is set; a browser
 * passes it once as ?access_token= and keeps it in an HttpOnly, SameSite=Strict cookie.
 */
export function terminalCapability(ctx: DaemonContext, processes: Pick<ProcessCapability, "registry" | "policy">): Capability {
  const deps: RpcDeps = { ctx, registry: processes.registry, policy: processes.policy };
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: true });
  const unregister = metrics.registerGauge("envd_terminal_sessions_active", "Open web terminal WebSocket connections", () => wss.clients.size);

  const page: RouteHandler = (req, res, url) => {
    const source = terminalTokenSource(ctx.state.accessToken, req, url);
    if (!source) return sendJsonError(res, 401, UNAUTHORIZED);
    if (source === "query") {
      // Keep the token out of the address bar and history: a cookie carries it from here on.
      const rest = new URLSearchParams(url.searchParams);
      rest.delete("access_token");
      const query = rest.toString();
      res.writeHead(303, {
        location: `/terminal${query ? `?${query}` : ""}`,
        "set-cookie": `${TOKEN_COOKIE}=${encodeURIComponent(url.searchParams.get("access_token")!)}; Path=/terminal; HttpOnly; SameSite=Strict`,
        "cache-control": "no-store",
        "content-length": 0,
      });
      res.end();
      return;
    }
    sendText(res, 200, TERMINAL_HTML, { "content-type": "text/html; charset=utf-8", "content-security-policy": TERMINAL_CSP, "cache-control": "no-store", "x-frame-options": "SAMEORIGIN" });
  };

  const serve = async (ws: WebSocket, url: URL): Promise<void> => {
    try {
      let opened: ServerMessage;
      let session;
      const pidParam = url.searchParams.get("pid");
      if (pidParam !== null) {
        const pid = Number(pidParam);
        const proc = Number.isInteger(pid) ? processes.registry.find({ pid }) : undefined;
        if (!proc) throw new ConnectError(`process with pid ${pidParam} not found`);
        if (!proc.isPty) throw new ConnectError(`process ${pid} has no terminal (it was started without a PTY)`);
        const offset = Number(url.searchParams.get("offset") ?? "0");
        if (!Number.isSafeInteger(offset) || offset < 0) throw new ConnectError(`offset '${url.searchParams.get("offset")}' is not a byte offset`);
        const { sub, offset: from, dropped } = proc.subscribe(false, { offset });
        session = { proc, sub };
        opened = { type: "opened", pid, offset: from, dropped, user: proc.spec.user.name, cols: proc.spec.pty?.cols ?? 0, rows: proc.spec.pty?.rows ?? 0 };
      } else {
        const cols = sizeParam(url, "cols");
        const rows = sizeParam(url, "rows");
        session = await startShell(deps, { user: url.searchParams.get("user") ?? undefined, cols, rows });
        opened = { type: "opened", pid: session.proc.pid, offset: 0, dropped: 0, user: session.proc.spec.user.name, cols, rows };
        ctx.log.info({ pid: session.proc.pid, user: session.proc.spec.user.name }, "web terminal shell started");
      }
      await runSession(ws, session.proc, session.sub, opened, ctx.log);
    } catch (err) {
      sendMessage(ws, { type: "error", message: ConnectError.from(err).rawMessage });
      ws.close(1008, "cannot open terminal");
    }
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== TERMINAL_WS_PATH) return rawAnswer(socket, "404 Not Found", `no WebSocket endpoint at ${url.pathname}`);
    if (!sameOrigin(req)) return rawAnswer(socket, "403 Forbidden", "cross-origin terminal connections are refused");
    if (!terminalTokenSource(ctx.state.accessToken, req, url)) return rawAnswer(socket, "401 Unauthorized", UNAUTHORIZED);
    wss.handleUpgrade(req, socket, head, (ws) => void serve(ws, url));
  };

  return {
    rest: {
      "GET /terminal": page,
      "GET /terminal/terminal.js": (_req, res) => sendAsset(res, terminalAssets().js, "text/javascript; charset=utf-8"),
      "GET /terminal/terminal.css": (_req, res) => sendAsset(res, terminalAssets().css, "text/css; charset=utf-8"),
      [`GET ${TERMINAL_WS_PATH}`]: (_req, res) => sendJsonError(res, 426, "this is a WebSocket endpoint: connect with Upgrade: websocket"),
    },
    upgradeRoutes: { [TERMINAL_WS_PATH]: upgrade },
    // The page checks the token itself (query, cookie or header); its script and styles are public library code.
    ownTokenCheck: ["GET /terminal", "GET /terminal/terminal.js", "GET /terminal/terminal.css", TERMINAL_WS_PATH],
    close() {
      unregister();
      for (const ws of wss.clients) ws.close(1001, "daemon shutting down");
      wss.close();
    },
  };
}
