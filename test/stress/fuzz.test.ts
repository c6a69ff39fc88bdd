// Protocol fuzzing for `npm run test:stress`: for FUZZ_SECONDS (default 30), mutated requests
// (flipped bytes, cut bodies, lying lengths, random headers) against the RPCs and the REST
// routes, over HTTP/1.1 and h2c. The daemon must never stop answering /health, must never
// take more than a bounded amount of memory, and must give back every descriptor.
import { it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { connect as h2connect } from "node:http2";
import { envelope } from "../helpers/connect-wire.js";
import { startDaemon } from "../helpers/daemon.js";
import { fdKinds, health, rawExchange, rssMiB, waitFor } from "../helpers/hostile.js";

const SEEDS: { path: string; type: string; body: Buffer }[] = [
  { path: "/filesystem.Filesystem/Stat", type: "application/json", body: Buffer.from('{"path":"/tmp"}') },
  { path: "/filesystem.Filesystem/ListDir", type: "application/json", body: Buffer.from('{"path":"/tmp","depth":2}') },
  { path: "/filesystem.Filesystem/Stat", type: "application/proto", body: Buffer.from([0x0a, 0x04, 0x2f, 0x74, 0x6d, 0x70]) },
  { path: "/process.Process/List", type: "application/json", body: Buffer.from("{}") },
  { path: "/process.Process/Start", type: "application/connect+json", body: envelope({ process: { cmd: "/bin/true" } }) },
  { path: "/filesystem.Filesystem/WatchDir", type: "application/connect+json", body: envelope({ path: "/tmp" }) },
  { path: "/envdts.v1.System/GetResourceUsage", type: "application/json", body: Buffer.from("{}") },
  { path: "/files?path=/tmp/envd-fuzz-target", type: "application/octet-stream", body: Buffer.from("fuzz") },
  { path: "/init", type: "application/json", body: Buffer.from('{"envVars":{"A":"b"}}') },
];

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (randomInt(6)) {
    case 0: // flip bytes
      for (let i = 0; i < 1 + randomInt(4); i++) if (out.length) out[randomInt(out.length)] = randomInt(256);
      return out;
    case 1: // cut
      return out.subarray(0, randomInt(out.length + 1));
    case 2: // lying envelope length
      if (out.length >= 5) out.writeUInt32BE(randomInt(2 ** 32), 1);
      return out;
    case 3: // garbage appended
      return Buffer.concat([out, randomBytes(randomInt(64))]);
    case 4: // all random
      return randomBytes(randomInt(256));
    default:
      return out;
  }
}

function request(seed: (typeof SEEDS)[number]): Buffer {
  const body = mutate(seed.body);
  const headers: string[] = [`POST ${seed.path} HTTP/1.1`, "host: x", `content-type: ${randomInt(8) ? seed.type : randomBytes(4).toString("hex")}`];
  const len = randomInt(10) ? body.length : randomInt(1 << 20);
  if (randomInt(5)) headers.push(`content-length: ${len}`);
  else headers.push("transfer-encoding: chunked");
  if (!randomInt(6)) headers.push(`connect-timeout-ms: ${randomInt(3) ? randomInt(100) : -1}`);
  if (!randomInt(6)) headers.push(`content-encoding: ${["gzip", "br", "identity", "zstd"][randomInt(4)]}`);
  if (!randomInt(8)) headers.push(`x-junk: ${randomBytes(randomInt(200)).toString("latin1").replace(/[\r\n]/g, "")}`);
  return Buffer.concat([Buffer.from(headers.join("\r\n") + "\r\n\r\n", "latin1"), body]);
}

it("fuzzed requests never take the daemon down, and it gives everything back", { timeout: 600_000 }, async () => {
  const seconds = Number(process.env.FUZZ_SECONDS ?? 30);
  const d = await startDaemon({ args: ["--max-message-bytes", String(1 << 20)] });
  try {
    const rss0 = rssMiB(d.pid);
    const fds0 = fdKinds(d.pid);
    const statuses = new Map<string, number>();
    const deadline = Date.now() + seconds * 1000;
    let n = 0;
    const worker = async () => {
      while (Date.now() < deadline) {
        const seed = SEEDS[randomInt(SEEDS.length)]!;
        if (randomInt(4) === 0) {
          // h2c: the same request as a stream, sometimes reset halfway.
          const s = h2connect(d.url);
          s.on("error", () => {});
          const req = s.request({ ":method": "POST", ":path": seed.path.split("?")[0]!, "content-type": seed.type });
          req.on("error", () => {});
          req.on("response", (h) => statuses.set(`h2 ${h[":status"]}`, (statuses.get(`h2 ${h[":status"]}`) ?? 0) + 1));
          req.end(mutate(seed.body));
          await new Promise((r) => setTimeout(r, randomInt(50)));
          s.destroy();
        } else {
          const r = await rawExchange(d.port, request(seed), { ms: 2000 });
          const key = r.response ? String(r.response.status) : r.closed ? "closed" : "no answer";
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
        }
        n++;
        if (n % 200 === 0) assert.equal(await health(d.url, 5000), 204, `after ${n} requests`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    console.log(`# fuzz: ${n} requests in ${seconds} s; answers: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    console.log(`# daemon RSS ${rss0.toFixed(0)} → ${rssMiB(d.pid).toFixed(0)} MiB`);
    assert.equal(await health(d.url), 204);
    assert.ok(rssMiB(d.pid) - rss0 < 200, `RSS ${rss0.toFixed(0)} → ${rssMiB(d.pid).toFixed(0)} MiB`);
    const back = await waitFor(() => {
      const f = fdKinds(d.pid);
      return f.total - f.socket <= fds0.total - fds0.socket + 2 && f.inotify === fds0.inotify;
    }, 15_000, 250);
    assert.ok(back, `fds ${JSON.stringify(fdKinds(d.pid))} vs ${JSON.stringify(fds0)}`);
    const uncaught = d.logs.filter((l) => /uncaught|unhandled/.test(String(l.msg)));
    assert.deepEqual(uncaught.map((l) => JSON.stringify(l.err).slice(0, 600)), [], "no uncaught errors");
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
