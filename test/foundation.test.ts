// Foundation: control routes, transport details (HTTP/1.1 + h2c, keep-alive, CORS), the
// request log, and the E2B SDK's first contact.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, readdirSync, statfsSync } from "node:fs";
import { connect as h2connect } from "node:http2";
import { connect as tcpConnect } from "node:net";
import { cpus } from "node:os";
import { join } from "node:path";
import { collectJsonFrames, connectStream } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const ROOT = new URL("..", import.meta.url).pathname;
const MIB = 1024 * 1024;

function meminfo(): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of readFileSync("/proc/meminfo", "utf8").split("\n")) {
    const r = /^(\S+):\s+(\d+)/.exec(line);
    if (r) m.set(r[1]!, Number(r[2]) * 1024);
  }
  return m;
}

/** Sends raw bytes on a fresh TCP connection and returns everything received until `done` or close. */
function rawExchange(port: number, bytes: string, done: (s: string) => boolean = () => false): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, "127.0.0.1");
    let got = "";
    sock.on("data", (b) => {
      got += b.toString("latin1");
      if (done(got)) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on("close", () => resolve(got));
    sock.on("error", reject);
    sock.write(bytes);
  });
}

function h2Get(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const session = h2connect(url);
    session.on("error", reject);
    const req = session.request({ ":path": path, ...headers });
    let body = "";
    let head: Record<string, unknown> = {};
    req.on("response", (h) => (head = h));
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      session.close();
      resolve({ status: Number(head[":status"]), headers: head, body });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("foundation", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("GET /health answers 204 with no body and no-store, over HTTP/1.1 and h2c", async () => {
    const res = await fetch(`${d.url}/health`);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(await res.text(), "");
    const h2 = await h2Get(d.url, "/health");
    assert.equal(h2.status, 204);
    assert.equal(h2.headers["cache-control"], "no-store");
    assert.equal(h2.body, "");
  });

  it("keeps HTTP/1.1 connections alive for 640 s", async () => {
    const reply = await rawExchange(d.port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", (s) => s.includes("\r\n\r\n"));
    assert.match(reply, /^HTTP\/1\.1 204 /);
    assert.match(reply, /\r\nKeep-Alive: timeout=640\r\n/i);
    assert.match(reply, /\r\nConnection: keep-alive\r\n/i);
  });

  it("GET /metrics returns E2B's fields, from /proc and statfs", async () => {
    const res = await fetch(`${d.url}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("cache-control"), "no-store");
    const text = await res.text();
    assert.ok(text.endsWith("}\n"), "Go's encoder ends the body with a newline");
    const m = JSON.parse(text);
    assert.deepEqual(Object.keys(m).sort(), ["cpu_count", "cpu_used_pct", "disk_total", "disk_used", "mem_cache", "mem_total", "mem_total_mib", "mem_used", "mem_used_mib", "ts"]);
    assert.ok(Math.abs(m.ts - Date.now() / 1000) < 5);
    assert.equal(m.cpu_count, cpus().length);
    assert.ok(m.cpu_used_pct >= 0 && m.cpu_used_pct <= 100);
    // Two decimals at most, as E2B rounds it (x * 100 is not exact in binary floating point).
    assert.ok(/^\d+(\.\d{1,2})?$/.test(String(m.cpu_used_pct)), `two decimals at most: ${m.cpu_used_pct}`);

    const mi = meminfo();
    assert.equal(m.mem_total, mi.get("MemTotal"));
    assert.equal(m.mem_total_mib, Math.floor(m.mem_total / MIB));
    const cache = mi.get("Cached")! + mi.get("SReclaimable")!;
    const used = mi.get("MemTotal")! - mi.get("MemFree")! - mi.get("Buffers")! - cache;
    assert.ok(Math.abs(m.mem_used - used) < 256 * MIB, `mem_used ${m.mem_used} vs gopsutil formula ${used}`);
    assert.ok(Math.abs(m.mem_cache - cache) < 256 * MIB, `mem_cache ${m.mem_cache} vs ${cache}`);
    assert.equal(m.mem_used_mib, Math.floor(m.mem_used / MIB));

    const s = statfsSync("/");
    assert.equal(m.disk_total, s.blocks * s.bsize);
    const diskUsed = s.blocks * s.bsize - s.bavail * s.bsize;
    assert.ok(Math.abs(m.disk_used - diskUsed) < 256 * MIB, `disk_used ${m.disk_used} vs ${diskUsed}`);
  });

  it("GET /envs returns the default variables (E2B_SANDBOX is set by the daemon)", async () => {
    const res = await fetch(`${d.url}/envs`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { E2B_SANDBOX: "true" });
  });

  for (const path of ["/freeze", "/unfreeze", "/fsfreeze", "/fsthaw", "/collapse", "/upgrade"]) {
    it(`POST ${path} answers a clear 501 in E2B's JSON error shape`, async () => {
      const res = await fetch(`${d.url}${path}`, { method: "POST" });
      assert.equal(res.status, 501);
      assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      const text = await res.text();
      assert.ok(text.endsWith("\n"));
      const body = JSON.parse(text);
      assert.equal(body.code, 501);
      assert.match(body.message, /not implemented/);
    });
  }

  it("unknown path → chi's text 404; wrong method on a known path → 405 with Allow", async () => {
    const res = await fetch(`${d.url}/no/such/route`);
    assert.equal(res.status, 404);
    assert.equal(await res.text(), "404 page not found\n");
    const wrong = await fetch(`${d.url}/health`, { method: "DELETE" });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET");
    assert.equal(await wrong.text(), "");
  });

  it("tells HTTP/1.1 from h2c by the first bytes, even when they arrive in pieces", async () => {
    const sock = tcpConnect(d.port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    const got: Buffer[] = [];
    sock.on("data", (b) => got.push(b));
    sock.write("PRI * HTTP/2.0\r\n");
    await new Promise((r) => setTimeout(r, 50));
    // The rest of the preface, then an empty SETTINGS frame (length 0, type 4, flags 0, stream 0).
    sock.write(Buffer.concat([Buffer.from("\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    for (let i = 0; i < 100 && Buffer.concat(got).length < 9; i++) await new Promise((r) => setTimeout(r, 10));
    sock.destroy();
    const frame = Buffer.concat(got);
    assert.equal(frame[3], 4, "the server's first frame is an HTTP/2 SETTINGS frame");

    const slow = tcpConnect(d.port, "127.0.0.1");
    await new Promise((r) => slow.once("connect", r));
    let reply = "";
    slow.on("data", (b) => (reply += b.toString("latin1")));
    slow.write("P"); // could still be the h2 preface
    await new Promise((r) => setTimeout(r, 50));
    slow.write("OST /init HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    for (let i = 0; i < 100 && !reply.includes("\r\n\r\n"); i++) await new Promise((r) => setTimeout(r, 10));
    slow.destroy();
    assert.match(reply, /^HTTP\/1\.1 204 /);
  });

  it("answers garbage on the port with 400 and closes, and stays up", async () => {
    const reply = await rawExchange(d.port, "HELLO THERE\r\n\r\n");
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.equal((await fetch(`${d.url}/health`)).status, 204);
  });

  it("CORS: preflight answered with 204, requested headers echoed, max-age 7200", async () => {
    const res = await fetch(`${d.url}/process.Process/Start`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-custom-thing,connect-protocol-version" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.equal(res.headers.get("access-control-allow-methods"), "POST");
    assert.equal(res.headers.get("access-control-allow-headers"), "content-type,x-custom-thing,connect-protocol-version");
    assert.equal(res.headers.get("access-control-max-age"), "7200");
    assert.equal(await res.text(), "");

    const refused = await fetch(`${d.url}/health`, { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "TRACE" } });
    assert.equal(refused.status, 204);
    assert.equal(refused.headers.get("access-control-allow-origin"), null, "a method outside the list is not allowed");
  });

  it("CORS: normal responses carry allow-origin and the exposed headers when an Origin is sent", async () => {
    const res = await fetch(`${d.url}/health`, { headers: { origin: "https://app.example" } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.equal(
      res.headers.get("access-control-expose-headers"),
      "Content-Encoding, Connect-Content-Encoding, Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Location, Cache-Control, X-Content-Type-Options",
    );
    const plain = await fetch(`${d.url}/health`);
    assert.equal(plain.headers.get("access-control-allow-origin"), null);
  });

  it("logs one JSON line per request with method, path, status, code, duration and a unique request id", async () => {
    const marker = `/log-check-${process.pid}-${Date.now()}`;
    await (await fetch(`${d.url}${marker}?secret=1`)).text();
    await (await fetch(`${d.url}/envdts.v1.System/HealthCheck`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).text();
    await (await fetch(`${d.url}/envdts.v1.System/HealthCheck`, { method: "POST", headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from("nosuchuser:").toString("base64")}` }, body: "{}" })).text();
    const ctl = new AbortController();
    const stream = await connectStream(`${d.url}/envdts.v1.System/WatchResourceUsage`, { intervalMs: 60_000 }, {}, ctl.signal);
    await collectJsonFrames(stream, (f) => f.length === 1);
    ctl.abort();
    await new Promise((r) => setTimeout(r, 300));

    const mine = d.logs.filter((l) => l.path === marker);
    assert.equal(mine.length, 1, "exactly one line for the request");
    const line = mine[0]!;
    assert.equal(line.msg, "request");
    assert.equal(line.method, "GET");
    assert.equal(line.status, 404);
    assert.equal(typeof line.ms, "number");
    assert.equal(typeof line.req, "number");
    assert.equal(typeof line.time, "string");
    assert.ok(!JSON.stringify(line).includes("secret"), "the query string is not logged");

    const rpc = d.logs.filter((l) => l.path === "/envdts.v1.System/HealthCheck");
    assert.deepEqual(
      rpc.slice(-2).map((l) => [l.status, l.code]),
      [
        [200, "ok"],
        [401, "unauthenticated"],
      ],
    );
    const watch = d.logs.filter((l) => l.path === "/envdts.v1.System/WatchResourceUsage");
    assert.equal(watch.length, 1);
    assert.equal(watch[0]!.code, "canceled", "a stream the client left is logged as canceled");
    assert.equal(watch[0]!.aborted, true);
    const ids = d.logs.filter((l) => l.msg === "request").map((l) => l.req);
    assert.equal(new Set(ids).size, ids.length, "request ids are unique");
  });

  it("the daemon's source writes no console output (one logger)", () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (p !== join(ROOT, "src/gen")) walk(p);
        } else if (e.name.endsWith(".ts") && /\bconsole\.(log|error|warn|info|debug)\(/.test(readFileSync(p, "utf8"))) offenders.push(p);
      }
    };
    walk(join(ROOT, "src"));
    assert.deepEqual(offenders, []);
  });

  it("the e2b SDK in debug mode creates a sandbox and sees it running", async () => {
    process.env.E2B_DEBUG = "true";
    process.env.E2B_SANDBOX_URL = d.url;
    const { Sandbox } = await import("e2b");
    const sandbox = await Sandbox.create();
    assert.equal(sandbox.sandboxId, "debug_sandbox_id");
    assert.equal(await sandbox.isRunning(), true);
    assert.ok(d.logs.some((l) => l.path === "/health" && l.status === 204));
  });
});

describe("cold start", () => {
  it("answers /health with 204 well under a second after spawn (or within a few times a bare Node server on a loaded machine)", async (t) => {
    const started = performance.now();
    const d = await startDaemon();
    let ms = 0;
    try {
      ms = (await firstHealth(d.url)) - started;
    } finally {
      assert.equal(await d.stop(), 0);
    }
    // The same measurement for a bare http server, as the yardstick of how loaded the machine is.
    const bareStart = performance.now();
    const bare = spawn(process.execPath, ["-e", BARE_SERVER], { stdio: ["ignore", "pipe", "inherit"] });
    let bareMs = 0;
    try {
      const port = Number((await once(bare.stdout!, "data")).toString().trim());
      bareMs = (await firstHealth(`http://127.0.0.1:${port}`)) - bareStart;
    } finally {
      bare.kill("SIGKILL");
    }
    t.diagnostic(`cold start to first 204: ${ms.toFixed(0)} ms (a bare Node http server: ${bareMs.toFixed(0)} ms)`);
    assert.ok(ms < Math.max(2000, 8 * bareMs), `cold start took ${ms.toFixed(0)} ms, a bare server ${bareMs.toFixed(0)} ms`);
  });
});

const BARE_SERVER = `const s = require("node:http").createServer((q, r) => { r.statusCode = 204; r.end(); });
s.listen(0, "127.0.0.1", () => console.log(s.address().port));`;

/** performance.now() when GET /health first answered 204. */
async function firstHealth(url: string): Promise<number> {
  for (;;) {
    const res = await fetch(`${url}/health`).catch(() => undefined);
    if (res?.status === 204) return performance.now();
    await new Promise((r) => setTimeout(r, 5));
  }
}

