// One port, every protocol: the envdts.v1.System service over real gRPC (h2c), Connect
// (JSON and binary, HTTP/1.1 and h2c) and gRPC-Web, including its server stream.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cpus, hostname, release } from "node:os";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { HealthCheckResponse_Status, System } from "../src/gen/envdts/v1/system_pb.js";
import { collectJsonFrames, connectStream, readFrames } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { grpc, grpcServerStream, grpcSystemClient, grpcUnary } from "./helpers/grpc-system.js";

const RPC = "/envdts.v1.System";

function memTotalBytes(): number {
  return Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) * 1024;
}

function transports(d: Daemon): Record<string, Transport> {
  return {
    "connect json http/1.1": createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }),
    "connect binary http/1.1": createConnectTransport({ baseUrl: d.url, httpVersion: "1.1", useBinaryFormat: true }),
    "connect binary h2c": createConnectTransport({ baseUrl: d.url, httpVersion: "2", useBinaryFormat: true }),
    "grpc-web binary http/1.1": createGrpcWebTransport({ baseUrl: d.url, httpVersion: "1.1" }),
    "grpc-web json http/1.1": createGrpcWebTransport({ baseUrl: d.url, httpVersion: "1.1", useBinaryFormat: false }),
    "grpc h2c (connect-node)": createGrpcTransport({ baseUrl: d.url }),
  };
}

describe("System service on one port, every protocol", () => {
  let d: Daemon;
  let grpcClient: any;
  before(async () => {
    d = await startDaemon();
    grpcClient = grpcSystemClient(d.port);
  });
  after(async () => {
    grpcClient?.close();
    assert.equal(await d.stop(), 0);
  });

  it("real gRPC over h2c (@grpc/grpc-js) answers HealthCheck, GetSystemInfo, GetResourceUsage", async () => {
    const health = await grpcUnary(grpcClient, "HealthCheck", {});
    assert.equal(health.status, "STATUS_SERVING");
    assert.equal(health.version, "0.1.0");
    assert.ok(health.uptimeSeconds > 0);

    const info = await grpcUnary(grpcClient, "GetSystemInfo", {});
    assert.equal(info.os, "Linux");
    assert.equal(info.kernel, release());
    assert.equal(info.hostname, hostname());
    assert.equal(info.arch, process.arch);
    assert.equal(info.cpu.count, cpus().length);
    assert.equal(info.cpu.model, cpus()[0]!.model.trim());
    assert.equal(Number(info.memoryTotalBytes), memTotalBytes());
    assert.equal(info.daemonVersion, "0.1.0");
    assert.match(info.cgroupVersion, /^CGROUP_VERSION_(NONE|V1|V2|HYBRID)$/);
    assert.notEqual(info.cgroupVersion, "CGROUP_VERSION_UNSPECIFIED");
    const root = info.disks.find((x: any) => x.mountPoint === "/");
    assert.ok(root, `no disk for / in ${JSON.stringify(info.disks)}`);
    assert.ok(Number(root.totalBytes) > 0 && Number(root.usedBytes) <= Number(root.totalBytes));

    const { usage } = await grpcUnary(grpcClient, "GetResourceUsage", {});
    assert.equal(usage.cpuCount, cpus().length);
    assert.ok(usage.cpuPercent >= 0 && usage.cpuPercent <= 100);
    assert.equal(Number(usage.memoryTotalBytes), memTotalBytes());
    assert.ok(Number(usage.memoryUsedBytes) > 0);
    assert.ok(Number(usage.diskTotalBytes) > 0);
    assert.ok(usage.network.some((n: any) => n.interface === "lo"), "loopback counters present");
    assert.ok(usage.loadAverage_1m >= 0, "protobufjs spells load_average_1m loadAverage_1m");
    assert.ok(Number(usage.daemon.rssBytes) > 10 * 1024 * 1024, "daemon RSS is the node process's");
    assert.ok(Number(usage.daemon.cpuUserMicros) > 0);
    assert.ok(usage.daemon.openFds > 0);
  });

  it("Connect JSON over HTTP/1.1 answers the same RPC on the same port, with protojson field names", async () => {
    const res = await fetch(`${d.url}${RPC}/GetSystemInfo`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    const body = await res.json();
    assert.equal(body.kernel, release());
    assert.equal(body.cpu.count, cpus().length);
    assert.equal(body.memoryTotalBytes, String(memTotalBytes()), "uint64 is a JSON string");
    assert.equal(body.daemonVersion, "0.1.0");
  });

  it("tolerates a Connect request without Connect-Protocol-Version (as connect-go does)", async () => {
    const res = await fetch(`${d.url}${RPC}/HealthCheck`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, "STATUS_SERVING");
  });

  it("answers an unknown method with 404 (Connect) and UNIMPLEMENTED (gRPC)", async () => {
    const res = await fetch(`${d.url}${RPC}/NoSuchMethod`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(res.status, 404);
    assert.equal(await res.text(), "404 page not found\n");
    const other = await fetch(`${d.url}/nosuch.Service/Method`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(other.status, 404);

    const client = grpcSystemClient(d.port);
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.makeUnaryRequest(`${RPC}/NoSuchMethod`, () => Buffer.alloc(0), (b: Buffer) => b, {}, (e: grpc.ServiceError) => resolve(e)),
    );
    client.close();
    assert.equal(err.code, grpc.status.UNIMPLEMENTED);
  });

  it("answers a bad Connect message with invalid_argument JSON", async () => {
    const res = await fetch(`${d.url}${RPC}/HealthCheck`, { method: "POST", headers: { "content-type": "application/json", "connect-protocol-version": "1" }, body: "{" });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, "invalid_argument");
  });

  for (const name of ["connect json http/1.1", "connect binary http/1.1", "connect binary h2c", "grpc-web binary http/1.1", "grpc-web json http/1.1", "grpc h2c (connect-node)"]) {
    it(`unary and the WatchResourceUsage stream over ${name}`, async () => {
      const client = createClient(System, transports(d)[name]!);
      const health = await client.healthCheck({});
      assert.equal(health.status, HealthCheckResponse_Status.SERVING);
      const info = await client.getSystemInfo({});
      assert.equal(info.cpu?.count, cpus().length);
      assert.equal(info.memoryTotalBytes, BigInt(memTotalBytes()));

      const times: number[] = [];
      const ctl = new AbortController();
      try {
        for await (const ev of client.watchResourceUsage({ intervalMs: 100 }, { signal: ctl.signal })) {
          assert.equal(ev.event.case, "sample");
          if (ev.event.case === "sample") times.push(Number(ev.event.value.time?.seconds) * 1000 + (ev.event.value.time?.nanos ?? 0) / 1e6);
          if (times.length === 3) ctl.abort();
        }
      } catch (err) {
        assert.equal(ConnectError.from(err).code, Code.Canceled);
      }
      assert.equal(times.length, 3);
      assert.ok(times[1]! - times[0]! >= 90 && times[2]! - times[1]! >= 90, `samples ~100 ms apart: ${times}`);
    });
  }

  it("streams WatchResourceUsage over real gRPC (grpc-js) with samples at the requested interval", async () => {
    const { messages, status } = await grpcServerStream(grpcClient, "WatchResourceUsage", { intervalMs: 100 }, undefined, (m) => m.length === 4);
    assert.equal(status.code, grpc.status.CANCELLED);
    assert.equal(messages.length, 4);
    for (const m of messages) {
      assert.equal(m.event, "sample");
      assert.equal(m.sample.cpuCount, cpus().length);
    }
    // The first sample of a new stream measures since boot / daemon start, not over ~0 µs.
    const first = messages[0].sample;
    assert.ok(first.cpuPercent > 0 && first.cpuPercent <= 100, `system cpu ${first.cpuPercent}`);
    assert.ok(first.daemon.cpuPercent > 0 && first.daemon.cpuPercent < 100 * cpus().length, `daemon cpu ${first.daemon.cpuPercent}`);
  });

  it("flushes each stream frame at once: the first sample arrives long before the second exists", async () => {
    // With a 60 s interval the second sample is 60 s away, so anything buffering the
    // first frame (until a second write or the end) would time this test out.
    const res = await connectStream(`${d.url}${RPC}/WatchResourceUsage`, { intervalMs: 60_000 });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/connect+json");
    const frames = await collectJsonFrames(res, (f) => f.length === 1);
    assert.equal(frames[0]!.flags, 0);
    assert.ok(frames[0]!.json.sample.memoryTotalBytes);

    const h2 = await grpcServerStream(grpcClient, "WatchResourceUsage", { intervalMs: 60_000 }, undefined, (m) => m.length === 1);
    assert.equal(h2.messages[0].event, "sample");
  });

  it("sends keepalive events on an idle stream every Keepalive-Ping-Interval seconds", async () => {
    const res = await connectStream(`${d.url}${RPC}/WatchResourceUsage`, { intervalMs: 60_000 }, { "keepalive-ping-interval": "1" });
    const started = Date.now();
    const frames = await collectJsonFrames(res, (f) => f.length === 3);
    const elapsed = Date.now() - started;
    assert.ok("sample" in frames[0]!.json, "the sample comes first");
    assert.deepEqual(frames[1]!.json, { keepalive: {} });
    assert.deepEqual(frames[2]!.json, { keepalive: {} });
    assert.ok(elapsed >= 1500, `two 1 s keepalives took ${elapsed} ms`);

    const md = new grpc.Metadata();
    md.set("keepalive-ping-interval", "1");
    const viaGrpc = await grpcServerStream(grpcClient, "WatchResourceUsage", { intervalMs: 60_000 }, md, (m) => m.length === 2);
    assert.deepEqual(viaGrpc.messages.map((m) => m.event), ["sample", "keepalive"]);
  });

  it("treats a zero, negative or garbage Keepalive-Ping-Interval as the default (90 s: no keepalive soon)", async () => {
    const results = await Promise.all(
      ["0", "-1", "abc", "1.5"].map(async (value) => {
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), 2500);
        const res = await connectStream(`${d.url}${RPC}/WatchResourceUsage`, { intervalMs: 60_000 }, { "keepalive-ping-interval": value }, ctl.signal);
        const frames: any[] = [];
        try {
          for await (const f of readFrames(res.body)) frames.push(JSON.parse(f.data.toString()));
        } catch {
          /* aborted after 2.5 s, as intended */
        }
        clearTimeout(timer);
        return { value, events: frames.map((f) => Object.keys(f)[0]) };
      }),
    );
    for (const r of results) assert.deepEqual(r.events, ["sample"], `header ${r.value}`);
  });
});

describe("Keepalive-Ping-Interval default comes from --keepalive-seconds", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ env: { ENVD_KEEPALIVE_SECONDS: "1" } });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("garbage, zero and negative headers fall back to the configured default", async () => {
    const results = await Promise.all(
      [undefined, "0", "-5", "abc"].map(async (value) => {
        const res = await connectStream(`${d.url}${RPC}/WatchResourceUsage`, { intervalMs: 60_000 }, value === undefined ? {} : { "keepalive-ping-interval": value });
        const frames = await collectJsonFrames(res, (f) => f.length === 2);
        return frames.map((f) => Object.keys(f.json)[0]);
      }),
    );
    for (const events of results) assert.deepEqual(events, ["sample", "keepalive"]);
  });
});
