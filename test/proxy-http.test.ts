// HTTP, HTTPS and WebSocket proxies through a real daemon, against a real upstream server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, createServer, request, type IncomingMessage, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ProxyType, type ProxyOptionsSchema } from "../src/gen/envdts/v1/proxy_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { closeServer, freePort, generatedSource, listenLocal, proxyClient } from "./helpers/proxy.js";
import { attachEchoServer, connectWebSocket, WsHandshakeError } from "./helpers/websocket.js";

/** The upstream: echoes request metadata, streams on demand, hashes uploads, can hang. */
function upstreamServer(): { server: Server; release(): void; connections: Set<number> } {
  let release: () => void = () => {};
  const connections = new Set<number>();
  const server = createServer((req, res) => {
    connections.add(req.socket.remotePort!);
    const url = new URL(req.url!, "http://x");
    if (url.pathname.endsWith("/echo")) {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { "content-type": "application/json", "x-upstream": "yes", "set-cookie": ["a=1", "b=2"] });
      res.end(body);
    } else if (url.pathname === "/stream") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("part1\n");
      new Promise<void>((r) => (release = r)).then(() => res.end("part2\n"));
    } else if (url.pathname === "/upload") {
      const h = createHash("sha256");
      let n = 0;
      req.on("data", (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on("end", () => res.end(JSON.stringify({ bytes: n, sha256: h.digest("hex"), te: req.headers["transfer-encoding"] ?? null })));
    } else if (url.pathname === "/hang") {
      // never answers
    } else {
      res.writeHead(404).end("nope");
    }
  });
  attachEchoServer(server);
  return { server, release: () => release(), connections };
}

function get(port: number, path: string, headers: Record<string, string> = {}, agent?: Agent): Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

describe("http proxy", { timeout: 180_000 }, () => {
  let d: Daemon;
  let client: ReturnType<typeof proxyClient>;
  let up: ReturnType<typeof upstreamServer>;
  let upPort: number;
  let tmp: string;
  before(async () => {
    d = await startDaemon();
    client = proxyClient(d.url);
    up = upstreamServer();
    upPort = await listenLocal(up.server);
    tmp = mkdtempSync(join(tmpdir(), "envd-proxy-tls-"));
  });
  after(async () => {
    await closeServer(up.server);
    rmSync(tmp, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  async function httpProxy(type: ProxyType, remote: string, options: MessageInitShape<typeof ProxyOptionsSchema> = {}, id?: string): Promise<number> {
    const res = await client.createProxy({ config: { id, type, localAddress: "127.0.0.1:0", remoteAddress: remote, options } });
    return Number(res.proxy!.boundAddress.split(":").pop());
  }

  it("forwards requests with X-Forwarded-* headers, the target's Host and a base path; keeps connections alive", async () => {
    const port = await httpProxy(ProxyType.HTTP, `http://127.0.0.1:${upPort}/base`, {}, "web");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    up.connections.clear();
    for (let i = 0; i < 5; i++) {
      const r = await get(port, `/echo?i=${i}`, { "x-forwarded-for": "10.0.0.9", connection: "keep-alive, x-secret", "x-secret": "hop" }, agent);
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-upstream"], "yes");
      assert.deepEqual(r.headers["set-cookie"], ["a=1", "b=2"]);
      const seen = JSON.parse(r.body);
      assert.equal(seen.url, `/base/echo?i=${i}`);
      assert.equal(seen.headers.host, `127.0.0.1:${upPort}`);
      assert.equal(seen.headers["x-forwarded-for"], "10.0.0.9, 127.0.0.1");
      assert.equal(seen.headers["x-forwarded-proto"], "http");
      assert.equal(seen.headers["x-forwarded-host"], `127.0.0.1:${port}`);
      assert.equal(seen.headers["x-secret"], undefined, "headers named in Connection are hop-by-hop");
    }
    agent.destroy();
    assert.equal(up.connections.size, 1, "one upstream connection served all five requests");
    const stats = (await client.listProxies({})).proxies.find((p) => p.config?.id === "web")!.stats!;
    assert.equal(stats.totalConnections, 1n);
    assert.equal(stats.requests, 5n);
    await client.deleteProxy({ id: "web" });
  });

  it("streams a chunked response as it is produced", { timeout: 15_000 }, async () => {
    const port = await httpProxy(ProxyType.HTTP, `127.0.0.1:${upPort}`, {}, "stream");
    const res = await fetch(`http://127.0.0.1:${port}/stream`);
    assert.equal(res.headers.get("transfer-encoding"), "chunked");
    const reader = res.body!.getReader();
    const first = await reader.read(); // arrives while the upstream still holds the rest
    assert.equal(Buffer.from(first.value!).toString(), "part1\n");
    up.release();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += Buffer.from(r.value).toString();
    assert.equal(rest, "part2\n");
    await client.deleteProxy({ id: "stream" });
  });

  it("streams a 256 MiB chunked upload byte-exact", async () => {
    const port = await httpProxy(ProxyType.HTTP, `127.0.0.1:${upPort}`, {}, "upload");
    const size = 256 * 1024 * 1024;
    const src = generatedSource(size);
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/upload", method: "POST" }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve(body));
      });
      req.on("error", reject);
      src.stream.pipe(req);
    });
    assert.deepEqual(JSON.parse(answer), { bytes: size, sha256: src.hash.digest("hex"), te: "chunked" });
    await client.deleteProxy({ id: "upload" });
  });

  it("cancels the upstream request when the client goes away mid-upload, and keeps serving", { timeout: 15_000 }, async () => {
    const port = await httpProxy(ProxyType.HTTP, `127.0.0.1:${upPort}`, {}, "abort");
    const upstreamSawAbort = new Promise<void>((resolve) => {
      const onRequest = (req: IncomingMessage) => {
        if (req.url !== "/upload?abort") return;
        up.server.off("request", onRequest);
        req.on("close", () => resolve());
      };
      up.server.on("request", onRequest);
    });
    const req = request({ host: "127.0.0.1", port, path: "/upload?abort", method: "POST" });
    req.on("error", () => {});
    req.write(Buffer.alloc(1024 * 1024));
    await new Promise((r) => setTimeout(r, 200));
    req.destroy();
    await upstreamSawAbort; // hangs (test timeout) if the proxy kept the upstream request open
    assert.equal((await get(port, "/echo")).status, 200);
    await client.deleteProxy({ id: "abort" });
  });

  it("answers 502 when the upstream is down and 504 when it does not answer in read_timeout_ms", async () => {
    const dead = await httpProxy(ProxyType.HTTP, `127.0.0.1:${await freePort()}`, { maxRetries: 1, retryDelayMs: 10 }, "dead");
    const r = await get(dead, "/echo");
    assert.equal(r.status, 502);
    assert.match(r.body, /ECONNREFUSED/);
    const slow = await httpProxy(ProxyType.HTTP, `127.0.0.1:${upPort}`, { readTimeoutMs: 300 }, "slow");
    const s = await get(slow, "/hang");
    assert.equal(s.status, 504);
    const stats = (await client.listProxies({})).proxies.find((p) => p.config?.id === "dead")!.stats!;
    assert.equal(stats.errors, 1n);
    await client.deleteProxy({ id: "dead" });
    await client.deleteProxy({ id: "slow" });
  });

  it("demands basic auth when configured (401 without, 200 with) and keeps the credentials to itself", async () => {
    const port = await httpProxy(ProxyType.HTTP, `127.0.0.1:${upPort}`, { auth: { method: { case: "basic", value: { username: "dev", password: "s3cret" } } } }, "basic");
    const none = await get(port, "/echo");
    assert.equal(none.status, 401);
    assert.match(String(none.headers["www-authenticate"]), /^Basic realm=/);
    assert.equal((await get(port, "/echo", { authorization: basic("dev", "wrong") })).status, 401);
    assert.equal((await get(port, "/echo", { authorization: "Bearer s3cret" })).status, 401);
    const ok = await get(port, "/echo", { authorization: basic("dev", "s3cret") });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).headers.authorization, undefined);
    // Proxy-Authorization works too and leaves the client's own Authorization for the upstream.
    const both = await get(port, "/echo", { "proxy-authorization": basic("dev", "s3cret"), authorization: "Bearer for-the-app" });
    assert.equal(both.status, 200);
    assert.equal(JSON.parse(both.body).headers.authorization, "Bearer for-the-app");
    const listed = (await client.listProxies({})).proxies.find((p) => p.config?.id === "basic")!;
    const auth = listed.config!.options!.auth!.method;
    assert.equal(auth.case, "basic");
    assert.equal(auth.case === "basic" && auth.value.password, "", "ListProxies does not reveal the password");
    await client.deleteProxy({ id: "basic" });
  });

  it("demands bearer auth when configured (401 without, 200 with)", async () => {
    const port = await httpProxy(ProxyType.HTTP, `127.0.0.1:${upPort}`, { auth: { method: { case: "bearerToken", value: "tok-123" } } }, "bearer");
    const none = await get(port, "/echo");
    assert.equal(none.status, 401);
    assert.match(String(none.headers["www-authenticate"]), /^Bearer/);
    assert.equal((await get(port, "/echo", { authorization: "Bearer tok-12" })).status, 401);
    assert.equal((await get(port, "/echo", { authorization: "Bearer tok-123" })).status, 200);
    await assert.rejects(connectWebSocket(port, "/ws"), (e: unknown) => e instanceof WsHandshakeError && e.status === 401);
    const ws = await connectWebSocket(port, "/ws", { authorization: "Bearer tok-123" });
    assert.equal((await ws.next()).payload.toString(), "hello /ws -");
    await ws.close();
    await client.deleteProxy({ id: "bearer" });
  });

  it("terminates TLS with the configured certificate (HTTPS)", async () => {
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(tmp, "key.pem"), "-out", join(tmp, "cert.pem"), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const cert = readFileSync(join(tmp, "cert.pem"), "utf8");
    const port = await httpProxy(ProxyType.HTTPS, `127.0.0.1:${upPort}`, { tls: { certPem: cert, keyFile: join(tmp, "key.pem") } }, "tls");
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: "127.0.0.1", port, path: "/echo", ca: cert }, (res) => {
        let b = "";
        res.on("data", (c) => (b += c));
        res.on("end", () => resolve(b));
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(JSON.parse(body).headers["x-forwarded-proto"], "https");
    const listed = (await client.listProxies({})).proxies.find((p) => p.config?.id === "tls")!;
    assert.equal(listed.config!.options!.tls!.keyFile, join(tmp, "key.pem"));
    await client.deleteProxy({ id: "tls" });

    for (const options of [{}, { tls: { certPem: "not a cert", keyPem: "nor a key" } }, { tls: { certPem: cert } }]) {
      const err = await client.createProxy({ config: { type: ProxyType.HTTPS, localAddress: "127.0.0.1:0", remoteAddress: `127.0.0.1:${upPort}`, options } }).then(
        () => assert.fail("created"),
        (e) => ConnectError.from(e),
      );
      assert.equal(err.code, Code.InvalidArgument, err.message);
    }
  });

  it("proxies WebSocket frames both ways and refuses plain requests on a WebSocket proxy", async () => {
    const port = await httpProxy(ProxyType.WEBSOCKET, `ws://127.0.0.1:${upPort}`, {}, "ws");
    const plain = await get(port, "/echo");
    assert.equal(plain.status, 426);
    const ws = await connectWebSocket(port, "/chat?room=1");
    assert.equal((await ws.next()).payload.toString(), "hello /chat?room=1 -");
    ws.send("ping text");
    assert.deepEqual(await ws.next().then((f) => [f.opcode, f.payload.toString()]), [1, "ping text"]);
    const big = generatedSource(300_000);
    const chunks: Buffer[] = [];
    for await (const c of big.stream) chunks.push(c as Buffer);
    const payload = Buffer.concat(chunks);
    ws.send(payload);
    const echoed = await ws.next();
    assert.equal(echoed.opcode, 2);
    assert.ok(echoed.payload.equals(payload));
    await ws.close();
    const stats = (await client.listProxies({})).proxies.find((p) => p.config?.id === "ws")!.stats!;
    assert.ok(stats.bytesFromClients > 300_000n);
    await client.deleteProxy({ id: "ws" });
  });
});
