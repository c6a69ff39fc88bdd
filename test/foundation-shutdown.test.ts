// Graceful shutdown: SIGTERM ends streams with a proper end, closes idle connections, exits 0.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect as h2connect } from "node:http2";
import { connect as tcpConnect } from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { System } from "../src/gen/envdts/v1/system_pb.js";
import { connectStream, readFrames } from "./helpers/connect-wire.js";
import { startDaemon } from "./helpers/daemon.js";
import { grpc, grpcSystemClient } from "./helpers/grpc-system.js";
import { alive, e2bSandbox, waitFor } from "./process-helpers.js";

const WATCH = "/envdts.v1.System/WatchResourceUsage";

/** Resolves when `n` more frames arrived; the returned `done` settles with every frame once the stream ends. */
function watchFrames(res: Response): { first: Promise<void>; done: Promise<{ flags: number; json: any }[]> } {
  let gotFirst!: () => void;
  const first = new Promise<void>((r) => (gotFirst = r));
  const done = (async () => {
    const out: { flags: number; json: any }[] = [];
    for await (const f of readFrames(res.body)) {
      out.push({ flags: f.flags, json: JSON.parse(f.data.toString("utf8")) });
      gotFirst();
    }
    return out;
  })();
  return { first, done };
}

describe("graceful shutdown", () => {
  it("SIGTERM ends open streams (Connect, gRPC, gRPC-Web) with unavailable 'daemon is shutting down' and exits 0", async (t) => {
    const d = await startDaemon();

    const connectRes = await connectStream(`${d.url}${WATCH}`, { intervalMs: 60_000 });
    const viaConnect = watchFrames(connectRes);

    const grpcClient = grpcSystemClient(d.port);
    let grpcFirst!: () => void;
    const grpcGotFirst = new Promise<void>((r) => (grpcFirst = r));
    const grpcStatus = new Promise<grpc.StatusObject>((resolve) => {
      const call = grpcClient.WatchResourceUsage({ intervalMs: 60_000 });
      call.on("data", () => grpcFirst());
      call.on("error", () => {});
      call.on("status", resolve);
    });

    const web = createClient(System, createGrpcWebTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    let webFirst!: () => void;
    const webGotFirst = new Promise<void>((r) => (webFirst = r));
    const webEnd = (async () => {
      try {
        for await (const _ of web.watchResourceUsage({ intervalMs: 60_000 })) webFirst();
        return undefined;
      } catch (err) {
        return ConnectError.from(err);
      }
    })();

    await Promise.all([viaConnect.first, grpcGotFirst, webGotFirst]);
    const started = Date.now();
    const code = await d.stop();
    const ms = Date.now() - started;
    t.diagnostic(`exit after SIGTERM with 3 open streams: ${ms} ms`);
    assert.equal(code, 0);
    assert.ok(ms < 4000, `exit took ${ms} ms; the grace period is 5 s, streams should end at once`);

    const frames = await viaConnect.done;
    const last = frames.at(-1)!;
    assert.equal(last.flags, 2, "the Connect stream ends with an end-stream frame");
    assert.deepEqual(last.json, { error: { code: "unavailable", message: "daemon is shutting down" } });
    assert.ok(frames.slice(0, -1).every((f) => f.flags === 0 && "sample" in f.json));

    const status = await grpcStatus;
    assert.equal(status.code, grpc.status.UNAVAILABLE);
    assert.equal(status.details, "daemon is shutting down");
    grpcClient.close();

    const webErr = await webEnd;
    assert.equal(webErr?.code, Code.Unavailable);
    assert.equal(webErr?.rawMessage, "daemon is shutting down");

    const stopLog = d.logs.filter((l) => l.path === WATCH);
    assert.equal(stopLog.length, 3, "each stream is logged once it ends");
    for (const l of stopLog) assert.equal(l.code, "unavailable");
  });

  it("closes idle HTTP/1.1 keep-alive connections and idle h2c sessions instead of waiting for them", async (t) => {
    const d = await startDaemon();

    const sock = tcpConnect(d.port, "127.0.0.1");
    const sockClosed = new Promise<void>((r) => sock.on("close", () => r()));
    sock.on("error", () => {});
    let reply = "";
    const answered = new Promise<void>((r) =>
      sock.on("data", (b) => {
        reply += b.toString();
        if (reply.includes("\r\n\r\n")) r();
      }),
    );
    sock.write(`GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n`);
    await answered;
    assert.match(reply, /^HTTP\/1\.1 204/);

    const session = h2connect(d.url);
    session.on("error", () => {});
    const sessionClosed = new Promise<void>((r) => session.on("close", () => r()));
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ":path": "/health" });
      req.on("response", (h) => (h[":status"] === 204 ? resolve() : reject(new Error(`status ${h[":status"]}`))));
      req.on("error", reject);
      req.end();
      req.resume();
    });
    // A connection that never sent a byte yet.
    const silent = tcpConnect(d.port, "127.0.0.1");
    silent.on("error", () => {});
    const silentClosed = new Promise<void>((r) => silent.on("close", () => r()));
    await new Promise((r) => silent.once("connect", r));

    const started = Date.now();
    const code = await d.stop();
    const ms = Date.now() - started;
    t.diagnostic(`exit after SIGTERM with idle connections: ${ms} ms`);
    assert.equal(code, 0);
    assert.ok(ms < 4000, `exit took ${ms} ms: idle connections held it up to the 5 s grace period`);
    await Promise.all([sockClosed, sessionClosed, silentClosed]);
  });
});

describe("SIGTERM and running processes", () => {
  const sleeper = async (args: string[]) => {
    const d = await startDaemon({ args });
    const { sbx } = await e2bSandbox(d);
    const h = await sbx.commands.run("sleep 301", { background: true, user: "user", timeoutMs: 0 });
    assert.ok(alive(h.pid));
    return { d, pid: h.pid };
  };

  it("stops them by default", async () => {
    const { d, pid } = await sleeper([]);
    assert.equal(await d.stop(), 0);
    await waitFor(() => !alive(pid), 10_000, "the command to be stopped");
  });

  it("leaves them running with --keep-processes-on-stop (a restart or upgrade)", async () => {
    const { d, pid } = await sleeper(["--keep-processes-on-stop"]);
    assert.equal(await d.stop(), 0);
    assert.ok(d.logs.some((l) => l.msg === "leaving processes running (--keep-processes-on-stop)"));
    assert.ok(alive(pid), "the command outlived the daemon");
    process.kill(pid, "SIGKILL");
  });
});
