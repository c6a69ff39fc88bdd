import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createHash, type Hash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { leftoverTemps } from "./helpers/files-http.js";

const GIB = 1024 * 1024 * 1024;
const MIB = 1024 * 1024;
const RSS_BUDGET = 64 * MIB;

/** A deterministic pseudo-random byte stream (AES-CTR keystream), hashed as it is produced. */
function pseudoRandom(total: number, hash: Hash): Readable {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), Buffer.alloc(16, 9));
  const zeros = Buffer.alloc(MIB);
  let left = total;
  return new Readable({
    highWaterMark: MIB,
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(MIB, left);
      left -= n;
      const chunk = cipher.update(n === MIB ? zeros : zeros.subarray(0, n));
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

/** Memory of a process from /proc/<pid>/status, in bytes. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Samples the daemon's RSS while `work` runs; returns the peak growth over the starting RSS. */
async function peakGrowth(pid: number, work: () => Promise<void>): Promise<number> {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5"); // resets VmHWM to the current RSS
  } catch {
    /* not permitted: the sampled maximum still counts */
  }
  const base = memory(pid).rss;
  let peak = base;
  const timer = setInterval(() => {
    const m = memory(pid);
    peak = Math.max(peak, m.rss, m.hwm);
  }, 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  const m = memory(pid);
  peak = Math.max(peak, m.rss, m.hwm);
  return peak - base;
}

/** Compressible text (numbered lines), hashed as it is produced. */
function textLines(total: number, hash: Hash): Readable {
  let left = total;
  let line = 0;
  return new Readable({
    highWaterMark: MIB,
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      let text = "";
      while (text.length < MIB) text += `line ${line++} of a compressible file\n`;
      const chunk = Buffer.from(text).subarray(0, Math.min(MIB, left));
      left -= chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

function upload(url: string, body: Readable, length?: number, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const lengthHeader: Record<string, number> = length === undefined ? {} : { "content-length": length };
    const req = request(url, { method: "POST", agent: false, headers: { "content-type": "application/octet-stream", ...lengthHeader, ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
    });
    req.on("error", reject);
    body.pipe(req);
  });
}

function download(url: string, hash: Hash, gzip = false): Promise<{ status: number; bytes: number; encoding?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: gzip ? { "accept-encoding": "gzip" } : {} }, (res) => {
      let bytes = 0;
      const body = gzip ? res.pipe(createGunzip()) : res;
      body.on("data", (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      body.on("end", () => resolve({ status: res.statusCode!, bytes, encoding: res.headers["content-encoding"] }));
      body.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("1 GiB through /files with flat daemon memory", () => {
  let d: Daemon;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    dir = mkdtempSync(join(tmpdir(), "envd-files-large-"));
    // Warm up the code paths so their one-off allocations are not counted.
    const warm = join(dir, "warm.bin");
    await upload(`${d.url}/files?path=${encodeURIComponent(warm)}`, pseudoRandom(8 * MIB, createHash("sha256")), 8 * MIB);
    await download(`${d.url}/files?path=${encodeURIComponent(warm)}`, createHash("sha256"));
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("uploads and downloads 1 GiB byte-exactly, the daemon's RSS growing by well under 64 MiB", { timeout: 240_000 }, async () => {
    const target = join(dir, "one-gib.bin");
    const url = `${d.url}/files?path=${encodeURIComponent(target)}`;

    const sent = createHash("sha256");
    let answer = { status: 0, text: "" };
    const upGrowth = await peakGrowth(d.pid, async () => {
      answer = await upload(url, pseudoRandom(GIB, sent), GIB);
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(statSync(target).size, GIB);
    assert.deepEqual(leftoverTemps(dir), []);

    const received = createHash("sha256");
    let got = { status: 0, bytes: 0 };
    const downGrowth = await peakGrowth(d.pid, async () => {
      got = await download(url, received);
    });
    assert.equal(got.status, 200);
    assert.equal(got.bytes, GIB);
    assert.equal(received.digest("hex"), sent.digest("hex"));

    process.stderr.write(`# daemon RSS growth: upload ${(upGrowth / MIB).toFixed(1)} MiB, download ${(downGrowth / MIB).toFixed(1)} MiB\n`);
    assert.ok(upGrowth < RSS_BUDGET, `upload grew the daemon's RSS by ${(upGrowth / MIB).toFixed(1)} MiB`);
    assert.ok(downGrowth < RSS_BUDGET, `download grew the daemon's RSS by ${(downGrowth / MIB).toFixed(1)} MiB`);
    rmSync(target);
  });

  it("streams 256 MiB gzip both ways, also with flat memory", { timeout: 120_000 }, async () => {
    const size = 256 * MIB;
    const target = join(dir, "gzipped.txt");
    const url = `${d.url}/files?path=${encodeURIComponent(target)}`;
    const sent = createHash("sha256");
    let answer = { status: 0, text: "" };
    const upGrowth = await peakGrowth(d.pid, async () => {
      answer = await upload(url, textLines(size, sent).pipe(createGzip()), undefined, { "content-encoding": "gzip" });
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(statSync(target).size, size);

    const received = createHash("sha256");
    let got: { status: number; bytes: number; encoding?: string } = { status: 0, bytes: 0 };
    const downGrowth = await peakGrowth(d.pid, async () => {
      got = await download(url, received, true);
    });
    assert.equal(got.encoding, "gzip");
    assert.equal(got.bytes, size);
    assert.equal(received.digest("hex"), sent.digest("hex"));
    process.stderr.write(`# daemon RSS growth with gzip: upload ${(upGrowth / MIB).toFixed(1)} MiB, download ${(downGrowth / MIB).toFixed(1)} MiB\n`);
    assert.ok(upGrowth < RSS_BUDGET, `gzip upload grew the daemon's RSS by ${(upGrowth / MIB).toFixed(1)} MiB`);
    assert.ok(downGrowth < RSS_BUDGET, `gzip download grew the daemon's RSS by ${(downGrowth / MIB).toFixed(1)} MiB`);
    rmSync(target);
  });
});
