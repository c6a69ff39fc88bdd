// Hostile clients on the wire: malformed, truncated, oversized and lying requests over raw
// HTTP/1.1 sockets and h2c. Each must get a clean error with the right code, the daemon must
// keep answering, and its memory and descriptors must stay bounded.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect as h2connect, constants as h2c, type ClientHttp2Session } from "node:http2";
import { connect as tcpConnect, type Socket } from "node:net";
import { existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { endStreamJson, fdKinds, health, rawEnvelope, rawExchange, rawPost, rssMiB, waitFor } from "./helpers/hostile.js";

const MIB = 1024 * 1024;
const LIMIT = MIB; // --max-message-bytes for this daemon
const FILLER = Buffer.alloc(64 * 1024, 0x20);
/** The same filler as one chunk of a chunked body. */
const CHUNK = Buffer.concat([Buffer.from("10000\r\n"), FILLER, Buffer.from("\r\n")]);

let d: Daemon;
let baseRss = 0;

before(async () => {
  d = await startDaemon({ args: ["--max-message-bytes", String(LIMIT)] });
  assert.equal(await health(d.url), 204);
  baseRss = rssMiB(d.pid);
});

after(async () => {
  await d?.stop();
});

/** One malformed request and what the client must see. */
interface Case {
  name: string;
  bytes: () => Buffer;
  status: number;
  /** Connect error code in the JSON body (unary) or end-stream frame (streams); grpc-status for gRPC-Web. */
  code?: string;
  grpcStatus?: string;
  /** Filler the client keeps writing after the request (an upload that will not stop). */
  keepSending?: Buffer;
  /** Anything else to verify afterwards. */
  check?: () => void;
}

const STAT = "/filesystem.Filesystem/Stat";
const START = "/process.Process/Start";
const cases: Case[] = [
  { name: "unary: invalid JSON", bytes: () => rawPost(STAT, "application/json", "{not json"), status: 400, code: "invalid_argument" },
  { name: "unary: JSON of the wrong shape", bytes: () => rawPost(STAT, "application/json", '{"path": 12}'), status: 400, code: "invalid_argument" },
  { name: "unary: JSON array instead of an object", bytes: () => rawPost(STAT, "application/json", "[]"), status: 400, code: "invalid_argument" },
  { name: "unary: duplicate JSON keys", bytes: () => rawPost(STAT, "application/json", '{"path":"/","path":"/tmp"}'), status: 400, code: "invalid_argument" },
  {
    name: "unary: JSON string that is not UTF-8",
    bytes: () => rawPost(STAT, "application/json", Buffer.concat([Buffer.from('{"path":"/tmp/'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])),
    status: 400,
    code: "invalid_argument",
  },
  { name: "unary: truncated protobuf", bytes: () => rawPost(STAT, "application/proto", Buffer.from([0x0a, 0x7f, 0x2f])), status: 400, code: "invalid_argument" },
  { name: "unary: protobuf string that is not UTF-8", bytes: () => rawPost(STAT, "application/proto", Buffer.from([0x0a, 0x02, 0xff, 0xfe])), status: 400, code: "invalid_argument" },
  { name: "unary: protobuf with an invalid wire type", bytes: () => rawPost(STAT, "application/proto", Buffer.from([0x0f, 0x01])), status: 400, code: "invalid_argument" },
  { name: "unary: wrong content type", bytes: () => rawPost(STAT, "text/plain", "{}"), status: 415 },
  { name: "unary: gzip body that is not gzip", bytes: () => rawPost(STAT, "application/json", "not gzip", { "content-encoding": "gzip" }), status: 400, code: "invalid_argument" },
  { name: "unary: brotli body that is not brotli", bytes: () => rawPost(STAT, "application/json", "not brotli at all", { "content-encoding": "br" }), status: 400, code: "invalid_argument" },
  { name: "unary: unknown compression", bytes: () => rawPost(STAT, "application/json", "{}", { "content-encoding": "zstd" }), status: 501, code: "unimplemented" },
  { name: "unary: invalid Connect-Timeout-Ms", bytes: () => rawPost(STAT, "application/json", "{}", { "connect-timeout-ms": "-5" }), status: 400, code: "invalid_argument" },
  {
    name: "unary: Content-Length of 200 MiB (client keeps sending)",
    bytes: () => rawPost(STAT, "application/json", "", { "content-length": 200 * MIB }),
    status: 429,
    code: "resource_exhausted",
    keepSending: FILLER,
  },
  {
    name: "unary: chunked body past the limit",
    bytes: () => Buffer.from(`POST ${STAT} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`),
    status: 429,
    code: "resource_exhausted",
    keepSending: CHUNK,
  },
  {
    name: "unary: gzip bomb (64 MiB of zeros in ~64 KiB)",
    bytes: () => rawPost(STAT, "application/json", gzipSync(Buffer.alloc(64 * MIB)), { "content-encoding": "gzip" }),
    status: 429,
    code: "resource_exhausted",
  },
  { name: "unknown method of a known service", bytes: () => rawPost("/filesystem.Filesystem/Format", "application/json", "{}"), status: 404 },
  { name: "unknown service", bytes: () => rawPost("/evil.Service/Method", "application/json", "{}"), status: 404 },
  { name: "GET on an RPC", bytes: () => Buffer.from(`GET ${STAT} HTTP/1.1\r\nhost: x\r\n\r\n`), status: 405 },
  {
    name: "stream: length prefix claiming 4 GiB",
    bytes: () => rawPost(START, "application/connect+json", rawEnvelope(0, 0xffffffff, "{}")),
    status: 200,
    code: "resource_exhausted",
  },
  {
    name: "stream: 4 GiB prefix while the client keeps sending",
    bytes: () => Buffer.concat([Buffer.from(`POST ${START} HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n`), rawEnvelope(0, 0xfffffff0), Buffer.from("\r\n")]),
    status: 200,
    code: "resource_exhausted",
    keepSending: CHUNK,
  },
  { name: "stream: truncated envelope (length says 100, body has 2)", bytes: () => rawPost(START, "application/connect+json", rawEnvelope(0, 100, "{}")), status: 200, code: "invalid_argument" },
  { name: "stream: truncated envelope header", bytes: () => rawPost(START, "application/connect+json", Buffer.from([0, 0])), status: 200, code: "invalid_argument" },
  { name: "stream: invalid JSON message", bytes: () => rawPost(START, "application/connect+json", rawEnvelope(0, 3, "{{{")), status: 200, code: "invalid_argument" },
  {
    name: "stream: two messages for a server-streaming method",
    bytes: () => rawPost(START, "application/connect+json", Buffer.concat([rawEnvelope(0, 2, "{}"), rawEnvelope(0, 2, "{}")])),
    status: 200,
    code: "unimplemented",
  },
  {
    name: "gRPC-Web over HTTP/1.1: length prefix claiming 4 GiB",
    bytes: () => rawPost(STAT, "application/grpc-web+proto", rawEnvelope(0, 0xffffffff)),
    status: 200,
    grpcStatus: "8",
  },
  { name: "headers of 100 KiB", bytes: () => Buffer.from(`GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(100 * 1024)}\r\n\r\n`), status: 431 },
  {
    name: "3000 headers",
    bytes: () => Buffer.from(`GET /health HTTP/1.1\r\nhost: x\r\n${Array.from({ length: 3000 }, (_, i) => `x-h${i}: v`).join("\r\n")}\r\n\r\n`),
    status: 431,
  },
  { name: "a 64 KiB URL", bytes: () => Buffer.from(`GET /files?path=${"a".repeat(64 * 1024)} HTTP/1.1\r\nhost: x\r\n\r\n`), status: 431 },
  { name: "binary garbage", bytes: () => Buffer.from("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", "latin1"), status: 400 },
  { name: "non-numeric Content-Length", bytes: () => Buffer.from(`POST ${STAT} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: abc\r\n\r\n{}`), status: 400 },
  {
    name: "Content-Length and Transfer-Encoding together (request smuggling)",
    bytes: () => Buffer.from(`POST ${STAT} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`),
    status: 400,
  },
  { name: "invalid chunk size", bytes: () => Buffer.from(`POST ${STAT} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`), status: 400 },
  { name: "/init: invalid JSON", bytes: () => rawPost("/init", "application/json", "{"), status: 400 },
  { name: "/init: 2 MiB body", bytes: () => rawPost("/init", "application/json", `{"envVars":{"A":"${"x".repeat(2 * MIB)}"}}`), status: 413 },
  { name: "/files/compose: body past the message limit", bytes: () => rawPost("/files/compose", "application/json", `{"source_paths":["${"x".repeat(2 * MIB)}"]}`), status: 413 },
  // E2B's envd answers 500 here (its multipart reader's error); kept for compatibility.
  { name: "/files upload: multipart without a boundary", bytes: () => rawPost("/files?path=/tmp/x", "multipart/form-data", "--x\r\n\r\n"), status: 500 },
  {
    name: "/files upload: multipart cut off inside a part (nothing is written)",
    bytes: () => rawPost("/files?path=/tmp/envd-hostile-never", "multipart/form-data; boundary=zz", "--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc"),
    status: 500,
    check: () => assert.equal(existsSync("/tmp/envd-hostile-never"), false),
  },
];

describe("malformed protocol input (HTTP/1.1, raw sockets)", () => {
  const table: string[] = [];
  after(() => console.log(`# malformed input → status / code\n${table.join("\n")}`));

  for (const c of cases) {
    it(`${c.name} → ${c.status}${c.code ? ` ${c.code}` : ""}${c.grpcStatus ? ` grpc-status ${c.grpcStatus}` : ""}`, async () => {
      const r = await rawExchange(d.port, c.bytes(), { keepSending: c.keepSending, ms: 10_000 });
      assert.ok(r.response, `no complete response (closed: ${r.closed}, got ${JSON.stringify(r.raw.subarray(0, 200).toString("latin1"))})`);
      const res = r.response!;
      let code: string | undefined;
      if (res.headers["content-type"]?.startsWith("application/connect+")) code = endStreamJson(res.body)?.error?.code;
      else if (res.headers["content-type"]?.startsWith("application/json") && res.body.length) code = JSON.parse(res.body.toString("utf8")).code;
      table.push(`${c.name.padEnd(72)} ${res.status} ${code ?? ""}`);
      assert.equal(res.status, c.status, res.body.toString("utf8").slice(0, 300));
      if (c.code) assert.equal(code, c.code, res.body.toString("utf8").slice(0, 300));
      if (c.grpcStatus) assert.match(res.body.toString("latin1"), new RegExp(`grpc-status: ?${c.grpcStatus}\\b`));
      c.check?.();
      assert.equal(await health(d.url), 204);
    });
  }

  it("memory stayed bounded through all of it", () => {
    // 200 MiB bodies, 4 GiB claims and a 64 MiB gzip bomb went by; nothing may have been buffered.
    const grown = rssMiB(d.pid) - baseRss;
    assert.ok(grown < 96, `RSS grew by ${grown.toFixed(1)} MiB`);
  });
});

function h2Session(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(d.url);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

describe("malformed protocol input (h2c)", () => {
  it("gRPC with a length prefix claiming 4 GiB → RESOURCE_EXHAUSTED, without reading 4 GiB", async () => {
    const s = await h2Session();
    const req = s.request({ ":method": "POST", ":path": STAT, "content-type": "application/grpc", te: "trailers" });
    let trailers: Record<string, unknown> = {};
    let head: Record<string, unknown> = {};
    req.on("error", () => {});
    req.write(rawEnvelope(0, 0xffffffff));
    req.resume();
    // The answer comes while our side of the stream is still open (we never end the 4 GiB).
    await new Promise<void>((r) => {
      req.on("response", (h) => {
        head = h;
        if (h["grpc-status"] !== undefined) r();
      });
      req.on("trailers", (t) => {
        trailers = t;
        r();
      });
      req.on("close", () => r());
    });
    req.close();
    s.close();
    const status = String(trailers["grpc-status"] ?? head["grpc-status"]);
    assert.equal(status, "8");
    assert.equal(await health(d.url), 204);
  });

  it("a 100 KiB header block is refused and the session or stream dies, not the daemon", async () => {
    const s = await h2Session();
    s.on("error", () => {});
    const outcome = await new Promise<string>((resolve) => {
      const req = s.request({ ":path": "/health", "x-big": "a".repeat(100 * 1024) });
      req.on("response", (h) => resolve(`status ${h[":status"]}`));
      req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      req.on("close", () => resolve(`closed ${req.rstCode}`));
      req.end();
    });
    s.destroy();
    assert.ok(!outcome.startsWith("status 2"), outcome);
    assert.equal(await health(d.url), 204);
  });

  it("a rapid-reset flood (2000 streams opened and cancelled) leaves the daemon serving", async () => {
    const s = await h2Session();
    s.on("error", () => {});
    for (let i = 0; i < 2000 && !s.destroyed; i++) {
      const req = s.request({ ":method": "POST", ":path": START, "content-type": "application/connect+json" });
      req.on("error", () => {});
      req.close(h2c.NGHTTP2_CANCEL);
    }
    await new Promise((r) => setTimeout(r, 300));
    s.destroy();
    assert.equal(await health(d.url), 204);
  });

  it("garbage after the h2 preface gets a GOAWAY or a close", async () => {
    const r = await rawExchange(d.port, Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.alloc(64, 0xff)]), { waitForClose: true, ms: 5000 });
    assert.equal(r.closed, true);
    assert.equal(await health(d.url), 204);
  });
});

describe("connections", () => {
  it("500 idle connections, then all closed: descriptors return to where they were", async () => {
    // Measured here: earlier tests' keep-alive connections may still be open (they only ever close).
    const before = fdKinds(d.pid).total;
    const socks: Socket[] = [];
    for (let i = 0; i < 500; i++) {
      const s = tcpConnect(d.port, "127.0.0.1");
      s.on("error", () => {});
      socks.push(s);
    }
    await Promise.all(socks.map((s) => new Promise((r) => (s.connecting ? s.once("connect", r) : r(null)))));
    await waitFor(() => fdKinds(d.pid).socket >= 500, 5000);
    assert.equal(await health(d.url), 204, "answers while 500 connections sit idle");
    for (const s of socks) s.destroy();
    const settled = await waitFor(() => fdKinds(d.pid).total <= before + 4, 5000);
    assert.ok(settled, `fds: ${JSON.stringify(fdKinds(d.pid))}, were ${before}`);
  });

  it("a half-sent request that then disconnects leaves nothing behind", async () => {
    const before = fdKinds(d.pid).total;
    for (let i = 0; i < 50; i++) {
      const s = tcpConnect(d.port, "127.0.0.1");
      s.on("error", () => {});
      s.write(i % 2 ? `POST ${START} HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+json\r\ncontent-length: 1000\r\n\r\n\x00\x00` : "GET /heal");
      setTimeout(() => s.destroy(), 20);
    }
    await new Promise((r) => setTimeout(r, 200));
    const settled = await waitFor(() => fdKinds(d.pid).total <= before + 4, 5000);
    assert.ok(settled, `fds: ${JSON.stringify(fdKinds(d.pid))}, were ${before}`);
    assert.equal(await health(d.url), 204);
  });
});
