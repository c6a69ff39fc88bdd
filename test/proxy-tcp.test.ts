// TCP proxies through a real daemon: byte-exact bulk transfer both ways with half-close,
// many concurrent connections, retries, timeouts, error codes and life cycle.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { request } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { ProxyType } from "../src/gen/envdts/v1/proxy_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { closeServer, eventually, freePort, generatedSource, listenLocal, proxyClient } from "./helpers/proxy.js";

const GiB = 1024 ** 3;

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Resolves when the socket has closed, whether cleanly or by an error (a reset). */
function closed(s: Socket): Promise<void> {
  s.on("error", () => {});
  return new Promise((r) => s.once("close", () => r()));
}

/** Everything the socket sends until it ends (or closes). */
async function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  await closed(s);
  return Buffer.concat(chunks);
}

async function rpcError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("the call succeeded");
}

describe("tcp proxy", { timeout: 300_000 }, () => {
  let d: Daemon;
  let client: ReturnType<typeof proxyClient>;
  before(async () => {
    d = await startDaemon();
    client = proxyClient(d.url);
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  async function tcpProxy(remotePort: number, options: Record<string, number> = {}, id?: string): Promise<number> {
    const res = await client.createProxy({ config: { id, type: ProxyType.TCP, localAddress: "127.0.0.1:0", remoteAddress: `127.0.0.1:${remotePort}`, options } });
    return Number(res.proxy!.boundAddress.split(":").pop());
  }

  it("carries 1 GiB to the remote byte-exact and passes the half-close on", async () => {
    // The sink hashes what arrives and answers only after the client's FIN came through.
    const sink = createServer({ allowHalfOpen: true }, (s) => {
      const h = createHash("sha256");
      let n = 0;
      s.on("data", (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      s.on("end", () => s.end(`${n} ${h.digest("hex")}`));
      s.on("error", () => {});
    });
    const remote = await listenLocal(sink);
    const port = await tcpProxy(remote, {}, "bulk");
    const s = await connectTo(port);
    const src = generatedSource(GiB);
    src.stream.pipe(s);
    const answer = (await readAll(s)).toString();
    assert.equal(answer, `${GiB} ${src.hash.digest("hex")}`);
    const listed = (await client.listProxies({})).proxies.find((p) => p.config?.id === "bulk")!;
    assert.ok(listed.stats!.bytesFromClients >= BigInt(GiB), `bytes_from_clients ${listed.stats!.bytesFromClients}`);
    assert.equal(listed.stats!.bytesToClients, BigInt(answer.length));
    assert.equal(listed.stats!.totalConnections, 1n);
    assert.equal(listed.stats!.errors, 0n);
    await client.deleteProxy({ id: "bulk" });
    await closeServer(sink);
  });

  it("carries 128 MiB from the remote to the client byte-exact", async () => {
    const size = 128 * 1024 * 1024;
    let expected = "";
    const source = createServer((s) => {
      const src = generatedSource(size);
      src.stream.pipe(s);
      src.stream.on("end", () => (expected = src.hash.digest("hex")));
      s.on("error", () => {});
    });
    const port = await tcpProxy(await listenLocal(source));
    const s = await connectTo(port);
    const h = createHash("sha256");
    let n = 0;
    s.on("data", (c: Buffer) => {
      h.update(c);
      n += c.length;
    });
    await closed(s);
    assert.equal(n, size);
    assert.equal(h.digest("hex"), expected);
    await closeServer(source);
  });

  it("serves 200 concurrent connections, each getting its own bytes back", async () => {
    const echo = createServer({ allowHalfOpen: true }, (s) => {
      s.on("error", () => {});
      s.pipe(s);
    });
    const port = await tcpProxy(await listenLocal(echo), {}, "many");
    const results = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const payload = randomBytes(64 * 1024);
        const s = await connectTo(port);
        s.end(payload);
        return { payload, got: await readAll(s) };
      }),
    );
    for (const r of results) assert.ok(r.got.equals(r.payload));
    const listed = (await client.listProxies({})).proxies.find((p) => p.config?.id === "many")!;
    assert.equal(listed.stats!.totalConnections, 200n);
    await eventually(async () => (await client.listProxies({})).proxies.find((p) => p.config?.id === "many")!.stats!.activeConnections === 0n, 5000, "connections to close");
    await client.deleteProxy({ id: "many" });
    await closeServer(echo);
  });

  it("retries the remote until it starts listening, holding the client's bytes", async () => {
    const remote = await freePort();
    const port = await tcpProxy(remote, { maxRetries: 50, retryDelayMs: 50, connectTimeoutMs: 1000 });
    const s = await connectTo(port);
    s.write("sent before the remote existed");
    await new Promise((r) => setTimeout(r, 300));
    const echo = createServer({ allowHalfOpen: true }, (c) => c.pipe(c));
    await listenLocal(echo, "127.0.0.1", remote);
    s.end();
    assert.equal((await readAll(s)).toString(), "sent before the remote existed");
    await closeServer(echo);
  });

  it("closes the client and counts an error when the remote cannot be reached", async () => {
    const port = await tcpProxy(await freePort(), { maxRetries: 2, retryDelayMs: 20 }, "dead");
    const s = await connectTo(port);
    s.on("error", () => {});
    assert.equal((await readAll(s)).length, 0);
    const listed = await eventually(async () => (await client.listProxies({})).proxies.find((p) => p.config?.id === "dead" && p.stats!.errors > 0n), 5000, "the error to be counted");
    assert.equal(listed.stats!.errors, 1n);
    await client.deleteProxy({ id: "dead" });
  });

  it("closes an idle connection after read_timeout_ms", { timeout: 10_000 }, async () => {
    const echo = createServer((c) => {
      c.on("error", () => {});
      c.pipe(c);
    });
    const port = await tcpProxy(await listenLocal(echo), { readTimeoutMs: 200 });
    const s = await connectTo(port);
    s.write("x");
    const [first] = await once(s, "data");
    assert.equal(first.toString(), "x");
    await closed(s); // without the timeout this would hang until the test's own timeout
    await closeServer(echo);
  });

  it("closes a connection whose remote stops reading after write_timeout_ms", { timeout: 15_000 }, async () => {
    const held = new Set<Socket>();
    const stuck = createServer((c) => {
      held.add(c);
      c.on("error", () => {});
      c.pause(); // accepts the connection, never reads: the kernel buffers fill, then the proxy's
    });
    const port = await tcpProxy(await listenLocal(stuck), { writeTimeoutMs: 300 }, "stuck");
    const s = await connectTo(port);
    const src = generatedSource(GiB).stream;
    src.pipe(s);
    await closed(s); // 1 GiB cannot fit in any buffer: only the timeout ends this
    src.destroy();
    const listed = (await client.listProxies({})).proxies.find((p) => p.config?.id === "stuck")!;
    assert.ok(listed.stats!.bytesFromClients < BigInt(GiB));
    assert.equal(listed.stats!.errors, 1n);
    await client.deleteProxy({ id: "stuck" });
    await closeServer(stuck, held); // a paused socket never notices its peer left
  });

  it("refuses a port in use, a bad address, a duplicate id and a missing type with clear codes", async () => {
    const holder = createServer();
    const held = await listenLocal(holder);
    let err = await rpcError(client.createProxy({ config: { type: ProxyType.TCP, localAddress: `127.0.0.1:${held}`, remoteAddress: "127.0.0.1:1" } }));
    assert.equal(err.code, Code.FailedPrecondition);
    assert.match(err.rawMessage, new RegExp(`127\\.0\\.0\\.1:${held}`));
    assert.match(err.rawMessage, /in use/);
    for (const [local, remote] of [
      ["not-an-ip:80", "127.0.0.1:1"],
      ["127.0.0.1:70000", "127.0.0.1:1"],
      ["127.0.0.1", "127.0.0.1:1"],
      ["127.0.0.1:0", "127.0.0.1:0"],
      ["127.0.0.1:0", "bad host!:80"],
    ]) {
      err = await rpcError(client.createProxy({ config: { type: ProxyType.TCP, localAddress: local, remoteAddress: remote } }));
      assert.equal(err.code, Code.InvalidArgument, `${local} -> ${remote}: ${err.message}`);
    }
    err = await rpcError(client.createProxy({ config: { localAddress: "127.0.0.1:0", remoteAddress: "127.0.0.1:1" } }));
    assert.equal(err.code, Code.InvalidArgument);
    await client.createProxy({ config: { id: "twice", type: ProxyType.TCP, localAddress: "127.0.0.1:0", remoteAddress: "127.0.0.1:1" } });
    err = await rpcError(client.createProxy({ config: { id: "twice", type: ProxyType.TCP, localAddress: "127.0.0.1:0", remoteAddress: "127.0.0.1:1" } }));
    assert.equal(err.code, Code.AlreadyExists);
    assert.match(err.rawMessage, /twice/);
    await client.deleteProxy({ id: "twice" });
    await closeServer(holder);
  });

  it("keeps running after the creating connection is gone; DeleteProxy stops the listener and its connections", async () => {
    const echo = createServer((c) => {
      c.on("error", () => {});
      c.pipe(c);
    });
    const remote = await listenLocal(echo);
    // Create on a connection of its own that is closed right after the answer.
    const body = JSON.stringify({ config: { id: "orphan", type: "PROXY_TYPE_TCP", localAddress: "127.0.0.1:0", remoteAddress: `127.0.0.1:${remote}` } });
    const created = await new Promise<{ proxy: { boundAddress: string } }>((resolve, reject) => {
      const req = request(`${d.url}/envdts.v1.Proxy/CreateProxy`, { method: "POST", agent: false, headers: { "content-type": "application/json", connection: "close" } }, (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve(JSON.parse(text)));
      });
      req.on("error", reject);
      req.end(body);
    });
    await new Promise((r) => setTimeout(r, 200));
    const port = Number(created.proxy.boundAddress.split(":").pop());
    const open = await connectTo(port);
    open.write("still here");
    assert.equal(((await once(open, "data")) as Buffer[])[0]!.toString(), "still here");

    const gone = closed(open);
    await client.deleteProxy({ id: "orphan" });
    await gone;
    await assert.rejects(connectTo(port), /ECONNREFUSED/);
    const err = await rpcError(client.deleteProxy({ id: "orphan" }));
    assert.equal(err.code, Code.NotFound);
    assert.equal((await client.listProxies({})).proxies.some((p) => p.config?.id === "orphan"), false);
    await closeServer(echo);
  });
});

describe("tcp proxy and daemon shutdown", { timeout: 60_000 }, () => {
  it("closes listeners and open connections when the daemon stops, and exits 0", async () => {
    const d = await startDaemon();
    const client = proxyClient(d.url);
    const echo = createServer((c) => {
      c.on("error", () => {});
      c.pipe(c);
    });
    const res = await client.createProxy({ config: { type: ProxyType.TCP, localAddress: "127.0.0.1:0", remoteAddress: `127.0.0.1:${await listenLocal(echo)}` } });
    const port = Number(res.proxy!.boundAddress.split(":").pop());
    const open = await connectTo(port);
    open.write("x");
    await once(open, "data");
    const gone = closed(open);
    assert.equal(await d.stop(), 0);
    await gone;
    await assert.rejects(connectTo(port), /ECONNREFUSED/);
    await closeServer(echo);
  });
});
