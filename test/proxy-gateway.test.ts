// The daemon as a gateway: /proxy/<port>/... on the daemon's own port reaches 127.0.0.1:<port>,
// over HTTP/1.1, h2c and WebSocket, behind the access token.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { connect as h2connect } from "node:http2";
import { connect } from "node:net";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { closeServer, freePort, generatedSource, listenLocal } from "./helpers/proxy.js";
import { attachEchoServer, connectWebSocket, WsHandshakeError } from "./helpers/websocket.js";

const TOKEN = "gw-token";

function upstream(): Server {
  const server = createServer((req, res) => {
    if (req.url!.startsWith("/upload")) {
      const h = createHash("sha256");
      let n = 0;
      req.on("data", (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on("end", () => res.end(`${n} ${h.digest("hex")}`));
      return;
    }
    res.writeHead(200, { "content-type": "application/json", connection: "keep-alive" });
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
  });
  attachEchoServer(server);
  return server;
}

function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: NodeJS.ReadableStream } = {}): Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? "GET", headers: opts.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    if (opts.body) opts.body.pipe(req);
    else req.end();
  });
}

describe("gateway /proxy/<port>/", { timeout: 120_000 }, () => {
  let d: Daemon;
  let up: Server;
  let port: number;
  before(async () => {
    d = await startDaemon({ args: ["--access-token", TOKEN] });
    up = upstream();
    port = await listenLocal(up);
  });
  after(async () => {
    await closeServer(up);
    assert.equal(await d.stop(), 0);
  });

  it("needs the access token, then forwards path, query and headers (but not the token)", async () => {
    const denied = await send(`${d.url}/proxy/${port}/echo?x=1`);
    assert.equal(denied.status, 401);
    assert.match(denied.body, /unauthorized/);
    const ok = await send(`${d.url}/proxy/${port}/echo/a%20b?x=1&y=%2F`, { headers: { "x-access-token": TOKEN, authorization: "Basic bm9ib2R5OnB3" } });
    assert.equal(ok.status, 200);
    const seen = JSON.parse(ok.body);
    assert.equal(seen.url, "/echo/a%20b?x=1&y=%2F");
    assert.equal(seen.headers["x-access-token"], undefined);
    assert.equal(seen.headers.authorization, "Basic bm9ib2R5OnB3", "the app's own credentials pass through");
    assert.equal(seen.headers["x-forwarded-prefix"], `/proxy/${port}`);
    assert.equal(seen.headers["x-forwarded-host"], `127.0.0.1:${d.port}`);
    assert.equal(seen.headers.host, `127.0.0.1:${port}`);
  });

  it("redirects /proxy/<port> to /proxy/<port>/, refuses bad ports, answers 502 for a closed port", async () => {
    const h = { "x-access-token": TOKEN };
    const r = await send(`${d.url}/proxy/${port}?q=1`, { headers: h });
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, `/proxy/${port}/?q=1`);
    assert.equal((await send(`${d.url}/proxy/70000/`, { headers: h })).status, 400);
    assert.equal((await send(`${d.url}/proxy/abc/`, { headers: h })).status, 400);
    const closed = await send(`${d.url}/proxy/${await freePort()}/`, { headers: h });
    assert.equal(closed.status, 502);
    assert.match(closed.body, /ECONNREFUSED/);
  });

  it("streams a 64 MiB upload through the gateway byte-exact", async () => {
    const src = generatedSource(64 * 1024 * 1024);
    const r = await send(`${d.url}/proxy/${port}/upload`, { method: "PUT", headers: { "x-access-token": TOKEN }, body: src.stream });
    assert.equal(r.body, `${64 * 1024 * 1024} ${src.hash.digest("hex")}`);
  });

  it("works over h2c", async () => {
    const session = h2connect(d.url);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ":path": `/proxy/${port}/echo?h2=1`, "x-access-token": TOKEN });
        let b = "";
        s.setEncoding("utf8");
        s.on("response", (headers) => assert.equal(headers[":status"], 200));
        s.on("data", (c) => (b += c));
        s.on("end", () => resolve(b));
        s.on("error", reject);
      });
      const seen = JSON.parse(body);
      assert.equal(seen.url, "/echo?h2=1");
      assert.equal(seen.headers["x-forwarded-host"], `127.0.0.1:${d.port}`);
    } finally {
      session.close();
    }
  });

  it("carries WebSocket through the gateway, behind the token", async () => {
    await assert.rejects(connectWebSocket(d.port, `/proxy/${port}/live`), (e: unknown) => e instanceof WsHandshakeError && e.status === 401);
    const ws = await connectWebSocket(d.port, `/proxy/${port}/live?v=2`, { "x-access-token": TOKEN });
    assert.equal((await ws.next()).payload.toString(), `hello /live?v=2 /proxy/${port}`);
    ws.send("through the daemon");
    assert.equal((await ws.next()).payload.toString(), "through the daemon");
    const big = Buffer.alloc(200_000, 0x5a);
    ws.send(big);
    assert.ok((await ws.next()).payload.equals(big));
    await ws.close();
  });

  it("still serves an RPC sent with `Upgrade: h2c` (as curl --http2 does) as a plain request", async () => {
    const body = "{}";
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port: d.port }, () => {
        s.write(
          "POST /envdts.v1.Proxy/ListProxies HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n" +
            `x-access-token: ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
      });
      let text = "";
      s.on("data", (c) => (text += c));
      s.on("end", () => resolve(text));
      s.on("error", reject);
    });
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.match(raw, /\{.*\}$/);
  });
});
