// Port discovery and exposure like E2B's socat forwards (without socat), and WaitForPort.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect, createServer } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { ProxyOrigin } from "../src/gen/envdts/v1/proxy_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { closeServer, eventually, freePort, listenLocal, proxyClient } from "./helpers/proxy.js";

const EXPOSE = "127.0.0.2"; // loopback is a /8 on Linux: a second address that is not 127.0.0.1

function hello(text: string): Server {
  return createHttpServer((_req, res) => res.end(text));
}

/** The body served at host:port, or undefined when nothing accepts connections there. */
async function fetchText(host: string, port: number): Promise<string | undefined> {
  try {
    return await (await fetch(`http://${host}:${port}/`)).text();
  } catch {
    return undefined;
  }
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

async function rpcError(p: Promise<unknown>): Promise<ConnectError> {
  return p.then(
    () => assert.fail("the call succeeded"),
    (e) => ConnectError.from(e),
  );
}

describe("port exposure (--expose-address)", { timeout: 60_000 }, () => {
  let d: Daemon;
  let client: ReturnType<typeof proxyClient>;
  before(async () => {
    d = await startDaemon({ args: ["--expose-address", EXPOSE] });
    client = proxyClient(d.url);
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("exposes a server bound to 127.0.0.1 on the expose address and removes the forward when it stops", async () => {
    const app = hello("from the app");
    const port = await listenLocal(app, "127.0.0.1");
    assert.equal(await eventually(() => fetchText(EXPOSE, port), 10_000, "the port to be exposed"), "from the app");

    const proxy = (await client.listProxies({})).proxies.find((p) => p.config?.id === `expose-${port}`)!;
    assert.equal(proxy.origin, ProxyOrigin.AUTO_EXPOSE);
    assert.equal(proxy.boundAddress, `${EXPOSE}:${port}`);
    assert.equal(proxy.config!.remoteAddress, `127.0.0.1:${port}`);
    assert.ok(proxy.stats!.totalConnections >= 1n);

    const listed = (await client.listListeningPorts({ loopbackOnly: true })).ports.find((p) => p.port === port)!;
    assert.equal(listed.address, "127.0.0.1");
    assert.equal(listed.family, "tcp4");
    assert.equal(listed.pid, process.pid);
    assert.equal(listed.loopbackOnly, true);
    assert.equal(listed.exposedAt, `${EXPOSE}:${port}`);
    // The forward's own socket is the daemon's and is never reported as loopback-only.
    const all = (await client.listListeningPorts({})).ports.filter((p) => p.port === port);
    assert.deepEqual(all.map((p) => [p.address, p.pid, p.loopbackOnly]).sort(), [["127.0.0.1", process.pid, true], [EXPOSE, d.pid, false]].sort());

    await closeServer(app);
    await eventually(() => refused(EXPOSE, port), 10_000, "the forward to go away");
    assert.equal((await client.listProxies({})).proxies.some((p) => p.config?.id === `expose-${port}`), false);
  });

  it("UnexposePort removes a forward and the scanner leaves that port alone while it listens", async () => {
    const app = hello("kept private");
    const port = await listenLocal(app, "127.0.0.1");
    await eventually(() => fetchText(EXPOSE, port), 10_000, "the port to be exposed");
    await client.unexposePort({ port });
    assert.ok(await refused(EXPOSE, port));
    await new Promise((r) => setTimeout(r, 2500)); // two scans or more
    assert.ok(await refused(EXPOSE, port), "not exposed again");
    assert.equal((await rpcError(client.unexposePort({ port }))).code, Code.NotFound);
    await closeServer(app);
  });
});

describe("listening ports, manual exposure and WaitForPort", { timeout: 60_000 }, () => {
  let d: Daemon;
  let client: ReturnType<typeof proxyClient>;
  before(async () => {
    d = await startDaemon();
    client = proxyClient(d.url);
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("does not expose anything without --expose-address, but ExposePort works on request", async () => {
    const app = hello("by hand");
    const port = await listenLocal(app, "127.0.0.1");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await client.listProxies({})).proxies.length, 0);
    assert.equal((await rpcError(client.exposePort({ port }))).code, Code.InvalidArgument);
    const res = await client.exposePort({ port, address: "127.0.0.3" });
    assert.equal(res.proxy!.boundAddress, `127.0.0.3:${port}`);
    assert.equal(res.proxy!.origin, ProxyOrigin.EXPOSE);
    assert.equal(await fetchText("127.0.0.3", port), "by hand");
    // Same address again: the existing forward; another address: already_exists.
    assert.equal((await client.exposePort({ port, address: "127.0.0.3" })).proxy!.boundAddress, `127.0.0.3:${port}`);
    assert.equal((await rpcError(client.exposePort({ port, address: "127.0.0.4" }))).code, Code.AlreadyExists);
    await client.unexposePort({ port });
    assert.ok(await refused("127.0.0.3", port));
    await closeServer(app);
  });

  it("lists IPv6 loopback listeners too", async () => {
    const app = createServer();
    const port = await listenLocal(app, "::1");
    const found = (await client.listListeningPorts({})).ports.find((p) => p.port === port)!;
    assert.equal(found.address, "::1");
    assert.equal(found.family, "tcp6");
    assert.equal(found.loopbackOnly, true);
    await closeServer(app);
  });

  it("WaitForPort returns once a late server starts listening", async () => {
    const port = await freePort();
    const late = createServer();
    const timer = setTimeout(() => late.listen(port, "127.0.0.1"), 500);
    const res = await client.waitForPort({ port, timeoutMs: 10_000, intervalMs: 50 });
    assert.ok(res.attempts > 1, `attempts ${res.attempts}`);
    assert.ok(res.elapsedMs >= 400, `elapsed ${res.elapsedMs}`);
    clearTimeout(timer);
    await closeServer(late);
  });

  it("WaitForPort ends with deadline_exceeded for a port that never opens", async () => {
    const port = await freePort();
    const err = await rpcError(client.waitForPort({ port, timeoutMs: 300 }));
    assert.equal(err.code, Code.DeadlineExceeded);
    assert.match(err.rawMessage, new RegExp(`127\\.0\\.0\\.1:${port} within 300 ms`));
    // The caller's own deadline ends it too.
    const started = Date.now();
    const viaDeadline = await rpcError(client.waitForPort({ port, timeoutMs: 60_000 }, { timeoutMs: 300 }));
    assert.equal(viaDeadline.code, Code.DeadlineExceeded);
    assert.ok(Date.now() - started < 30_000);
    assert.equal((await rpcError(client.waitForPort({ port: 0 }))).code, Code.InvalidArgument);
  });
});
