// Behaviour the benchmark work (docs/performance.md, bench/NOTES.md) changed and must keep: a long
// process stream does not hold its output, RPC answers go out uncompressed, and /files
// sends data that does not compress as it is when the client accepts that.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Process } from "../src/gen/process_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { httpRequest } from "./helpers/files-http.js";
import { connectStream, userAuth } from "./process-helpers.js";

const MIB = 1024 * 1024;

function rss(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
}

describe("performance-related behaviour", () => {
  let d: Daemon;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    dir = mkdtempSync("/tmp/envd-perf-");
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("streams 256 MiB of output without holding it (daemon RSS grows < 96 MiB)", { timeout: 120_000 }, async () => {
    const client = createClient(Process, createConnectTransport({ httpVersion: "2", baseUrl: d.url }));
    const before = rss(d.pid);
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, rss(d.pid))), 50);
    let bytes = 0;
    let exit: number | undefined;
    try {
      const events = client.start({ process: { cmd: "/usr/bin/head", args: ["-c", String(256 * MIB), "/dev/zero"] }, stdin: false }, { headers: { authorization: userAuth("user") } });
      for await (const res of events) {
        const ev = res.event?.event;
        if (ev?.case === "data" && ev.value.output.case === "stdout") bytes += ev.value.output.value.length;
        if (ev?.case === "end") exit = ev.value.exitCode;
      }
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, rss(d.pid));
    assert.equal(bytes, 256 * MIB);
    assert.equal(exit, 0);
    // Before the fix every message stayed reachable until the stream ended: growth ≈ the output.
    assert.ok(peak - before < 96 * MIB, `daemon RSS grew by ${((peak - before) / MIB).toFixed(0)} MiB while streaming 256 MiB`);
  });

  it("answers RPCs uncompressed even to a client that accepts gzip", async () => {
    const res = await connectStream(d, "/process.Process/Start", { process: { cmd: "/bin/sh", args: ["-c", "head -c 200000 /dev/zero"] } }, { authorization: userAuth("user"), "connect-accept-encoding": "gzip" });
    assert.equal(res.status, 200);
    const data = res.frames.filter((f) => (f.json as { event?: { data?: unknown } }).event?.data);
    assert.ok(data.length >= 2, "the output came in several data events");
    // Bit 0 of an envelope's flags marks a compressed message.
    for (const f of res.frames) assert.equal(f.flags & 1, 0);
  });

  it("sends a file that does not compress as it is when identity is acceptable, gzip otherwise", async () => {
    const random = randomBytes(256 * 1024);
    const text = Buffer.from("a line of text that compresses well\n".repeat(8000));
    writeFileSync(join(dir, "random.bin"), random);
    writeFileSync(join(dir, "text.txt"), text);
    const get = (name: string, acceptEncoding: string) => httpRequest(`${d.url}/files?path=${encodeURIComponent(join(dir, name))}`, { headers: { "accept-encoding": acceptEncoding } });

    // What Node's fetch sends on every request.
    let res = await get("random.bin", "gzip, deflate");
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-encoding"], undefined);
    assert.equal(res.headers["content-length"], String(random.length));
    assert.ok(res.body.equals(random));

    res = await get("random.bin", "gzip, identity;q=0");
    assert.equal(res.headers["content-encoding"], "gzip");
    assert.ok(gunzipSync(res.body).equals(random));

    // A caller who asks for gzip (curl --compressed, browsers, the SDK's gzip: true) gets it where it helps.
    res = await get("text.txt", "deflate, gzip, br");
    assert.equal(res.headers["content-encoding"], "gzip");
    assert.ok(res.body.length < text.length / 4, `compressed to ${res.body.length} of ${text.length} bytes`);
    assert.ok(gunzipSync(res.body).equals(text));
  });
});
