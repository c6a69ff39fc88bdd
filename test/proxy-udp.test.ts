// UDP relays through a real daemon: echo, one session per client address, idle expiry.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { once } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { ProxyType } from "../src/gen/envdts/v1/proxy_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { eventually, proxyClient } from "./helpers/proxy.js";

async function bound(type: "udp4" | "udp6" = "udp4", host = "127.0.0.1"): Promise<UdpSocket> {
  const s = createSocket(type);
  s.bind(0, host);
  await once(s, "listening");
  return s;
}

/** Sends `msg` to port and waits for one reply (the test's timeout catches a lost one). */
async function roundTrip(s: UdpSocket, port: number, msg: string): Promise<string> {
  const reply = once(s, "message");
  s.send(msg, port, "127.0.0.1");
  const [data] = (await reply) as [Buffer];
  return data.toString();
}

describe("udp proxy", { timeout: 60_000 }, () => {
  let d: Daemon;
  let client: ReturnType<typeof proxyClient>;
  let echo: UdpSocket;
  before(async () => {
    d = await startDaemon();
    client = proxyClient(d.url);
    // Replies name the address the echo server saw, so sessions are visible.
    echo = await bound();
    echo.on("message", (msg, rinfo) => echo.send(`${msg.toString()} via ${rinfo.port}`, rinfo.port, rinfo.address));
  });
  after(async () => {
    echo.close();
    assert.equal(await d.stop(), 0);
  });

  it("echoes datagrams with one upstream session per client, and expires idle sessions", async () => {
    const res = await client.createProxy({
      config: { id: "dns-like", type: ProxyType.UDP, localAddress: "127.0.0.1:0", remoteAddress: `127.0.0.1:${echo.address().port}`, options: { udpSessionTimeoutMs: 300 } },
    });
    const port = Number(res.proxy!.boundAddress.split(":").pop());
    const a = await bound();
    const b = await bound();
    const a1 = await roundTrip(a, port, "a1");
    const a2 = await roundTrip(a, port, "a2");
    const b1 = await roundTrip(b, port, "b1");
    const via = (s: string) => s.split(" via ")[1];
    assert.match(a1, /^a1 via \d+$/);
    assert.equal(via(a1), via(a2), "one client keeps its upstream session");
    assert.notEqual(via(a1), via(b1), "two clients get two sessions");
    assert.notEqual(Number(via(a1)), a.address().port, "the echo server sees the proxy, not the client");

    let stats = (await client.listProxies({})).proxies.find((p) => p.config?.id === "dns-like")!.stats!;
    assert.equal(stats.activeConnections, 2n);
    assert.equal(stats.totalConnections, 2n);
    assert.equal(stats.bytesFromClients, 6n);
    assert.equal(stats.bytesToClients, BigInt(a1.length + a2.length + b1.length));

    stats = await eventually(async () => {
      const s = (await client.listProxies({})).proxies.find((p) => p.config?.id === "dns-like")!.stats!;
      return s.activeConnections === 0n && s;
    }, 5000, "idle sessions to expire");
    // After expiry the same client gets a fresh session.
    const a3 = await roundTrip(a, port, "a3");
    assert.notEqual(via(a3), via(a1));
    a.close();
    b.close();
    await client.deleteProxy({ id: "dns-like" });
  });

  it("relays large datagrams and IPv6 clients", async () => {
    const echo6 = await bound("udp6", "::1");
    echo6.on("message", (msg, rinfo) => echo6.send(msg, rinfo.port, rinfo.address));
    const res = await client.createProxy({ config: { id: "v6", type: ProxyType.UDP, localAddress: "[::1]:0", remoteAddress: `[::1]:${echo6.address().port}` } });
    assert.match(res.proxy!.boundAddress, /^\[::1\]:\d+$/);
    const port = Number(res.proxy!.boundAddress.split(":").pop());
    const c = await bound("udp6", "::1");
    const big = Buffer.alloc(60_000, 7);
    const reply = once(c, "message");
    c.send(big, port, "::1");
    const [data] = (await reply) as [Buffer];
    assert.ok(data.equals(big));
    c.close();
    echo6.close();
    await client.deleteProxy({ id: "v6" });
  });

  it("reports a UDP port in use as failed_precondition", async () => {
    const holder = await bound();
    const err = await client.createProxy({ config: { type: ProxyType.UDP, localAddress: `127.0.0.1:${holder.address().port}`, remoteAddress: "127.0.0.1:9" } }).then(
      () => assert.fail("created"),
      (e) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.FailedPrecondition);
    assert.match(err.rawMessage, new RegExp(`127\\.0\\.0\\.1:${holder.address().port} is already in use`));
    holder.close();
  });
});
