// A mixed load against one daemon: many concurrent clients, each looping over commands, PTYs,
// uploads, downloads, watches and metadata calls, checking every answer. Used by the short
// load test in `npm test` and by the long one in `npm run test:stress`.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectStream, readFrames } from "./connect-wire.js";
import type { Daemon } from "./daemon.js";
import { fdKinds, readProcessEvents, rssMiB, startCommand, unaryJson } from "./hostile.js";

/** What a load run saw. */
export interface LoadReport {
  seconds: number;
  clients: number;
  ops: number;
  /** Answers that were not what the operation must produce, with a sample of each kind. */
  errors: number;
  errorSamples: string[];
  latency: Record<string, { n: number; p50: number; p99: number; max: number }>;
  rssStartMiB: number;
  rssMaxMiB: number;
  fdsStart: ReturnType<typeof fdKinds>;
  fdsMax: number;
}

type Op = (ctx: { url: string; dir: string; id: number; big: Buffer; bigPath: string }) => Promise<void>;

function expect(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(what);
}

const OPS: Record<string, Op> = {
  async command({ url }) {
    const token = randomBytes(6).toString("hex");
    const ev = await readProcessEvents(await startCommand(url, `echo ${token}`));
    expect(ev.some((e) => e.text === `${token}\n`), `command output missing: ${JSON.stringify(ev).slice(0, 200)}`);
    expect(ev.find((e) => e.kind === "end")?.json.end.exited === true, "command did not exit 0");
  },
  async bigOutput({ url }) {
    const ev = await readProcessEvents(await startCommand(url, "head -c 200000 /dev/zero | tr '\\0' x"));
    const n = ev.filter((e) => e.kind === "stdout").reduce((s, e) => s + (e.text?.length ?? 0), 0);
    expect(n === 200000, `200000 bytes of output expected, got ${n}`);
  },
  async pty({ url }) {
    const ev = await readProcessEvents(await startCommand(url, "echo pty-ok; exit 3", { pty: true }));
    expect(ev.some((e) => e.text?.includes("pty-ok")), "pty output missing");
    expect(ev.find((e) => e.kind === "end")?.json.end.exitCode === 3, "pty exit code");
  },
  async upload({ url, dir, id }) {
    const body = randomBytes(64 * 1024);
    const path = join(dir, `up-${id}`);
    const up = await fetch(`${url}/files?path=${encodeURIComponent(path)}&username=user`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body });
    expect(up.status === 200, `upload ${up.status} ${await up.text()}`);
    await up.arrayBuffer().catch(() => undefined);
    const down = await fetch(`${url}/files?path=${encodeURIComponent(path)}`);
    const got = Buffer.from(await down.arrayBuffer());
    expect(createHash("sha256").update(got).digest("hex") === createHash("sha256").update(body).digest("hex"), "uploaded bytes came back different");
  },
  async download({ url, big, bigPath }) {
    const res = await fetch(`${url}/files?path=${encodeURIComponent(bigPath)}`);
    const got = Buffer.from(await res.arrayBuffer());
    expect(res.status === 200 && got.equals(big), `download ${res.status}, ${got.length} bytes`);
  },
  async watch({ url, dir, id }) {
    const wdir = join(dir, `w-${id}`);
    mkdirSync(wdir, { recursive: true });
    const ac = new AbortController();
    const res = await connectStream(`${url}/filesystem.Filesystem/WatchDir`, { path: wdir }, {}, ac.signal);
    const name = `f-${randomBytes(4).toString("hex")}`;
    let seen = false;
    try {
      for await (const f of readFrames(res.body)) {
        const j = JSON.parse(f.data.toString());
        if (j.start) writeFileSync(join(wdir, name), "x");
        if (j.filesystem?.name === name && j.filesystem.type === "EVENT_TYPE_CREATE") {
          seen = true;
          break;
        }
        if (f.flags & 2) break;
      }
    } finally {
      ac.abort();
    }
    expect(seen, "watch saw no CREATE");
  },
  async metadata({ url, dir }) {
    const st = await unaryJson(url, "filesystem.Filesystem/Stat", { path: dir });
    expect(st.status === 200, `stat ${st.status}`);
    const ls = await unaryJson(url, "filesystem.Filesystem/ListDir", { path: dir });
    expect(ls.status === 200, `listdir ${ls.status}`);
  },
};

/** Weighted: commands and file transfers most, PTYs and watches less. */
const MIX = ["command", "command", "bigOutput", "pty", "upload", "upload", "download", "download", "watch", "metadata", "metadata"];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `clients` concurrent loops for `seconds` against `d`; files go under `dir`. */
export async function runLoad(d: Daemon, opts: { clients: number; seconds: number; dir: string }): Promise<LoadReport> {
  const big = randomBytes(1024 * 1024);
  const bigPath = join(opts.dir, "big.bin");
  writeFileSync(bigPath, big);
  const samples = new Map<string, number[]>();
  const errorKinds = new Map<string, string>();
  let errors = 0;
  let ops = 0;
  const rssStart = rssMiB(d.pid);
  const fdsStart = fdKinds(d.pid);
  let rssMax = rssStart;
  let fdsMax = fdsStart.total;
  const sampler = setInterval(() => {
    try {
      rssMax = Math.max(rssMax, rssMiB(d.pid));
      fdsMax = Math.max(fdsMax, fdKinds(d.pid).total);
    } catch {
      /* the daemon died: the checks below tell */
    }
  }, 250);
  const deadline = Date.now() + opts.seconds * 1000;
  const client = async (id: number) => {
    let i = id;
    while (Date.now() < deadline) {
      const name = MIX[i++ % MIX.length]!;
      const t0 = performance.now();
      try {
        await OPS[name]!({ url: d.url, dir: opts.dir, id, big, bigPath });
        const list = samples.get(name) ?? [];
        list.push(performance.now() - t0);
        samples.set(name, list);
      } catch (err) {
        errors++;
        const msg = `${name}: ${(err as Error).message}`.slice(0, 300);
        if (!errorKinds.has(msg.slice(0, 60))) errorKinds.set(msg.slice(0, 60), msg);
      }
      ops++;
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, (_, i) => client(i)));
  clearInterval(sampler);
  const latency: LoadReport["latency"] = {};
  const all: number[] = [];
  for (const [name, list] of samples) {
    list.sort((a, b) => a - b);
    all.push(...list);
    latency[name] = { n: list.length, p50: percentile(list, 50), p99: percentile(list, 99), max: list[list.length - 1]! };
  }
  all.sort((a, b) => a - b);
  latency.all = { n: all.length, p50: percentile(all, 50), p99: percentile(all, 99), max: all[all.length - 1] ?? 0 };
  return { seconds: opts.seconds, clients: opts.clients, ops, errors, errorSamples: [...errorKinds.values()].slice(0, 10), latency, rssStartMiB: rssStart, rssMaxMiB: rssMax, fdsStart, fdsMax };
}

/** The report as a small table for the test log. */
export function formatReport(r: LoadReport): string {
  const lines = [`# load: ${r.clients} clients for ${r.seconds} s: ${r.ops} operations, ${r.errors} unexpected errors`];
  lines.push(`# daemon RSS ${r.rssStartMiB.toFixed(0)} MiB at start, ${r.rssMaxMiB.toFixed(0)} MiB at most; fds ${r.fdsStart.total} at start, ${r.fdsMax} at most`);
  lines.push(`# ${"operation".padEnd(10)} ${"count".padStart(7)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)} ${"max ms".padStart(9)}`);
  for (const [name, l] of Object.entries(r.latency)) lines.push(`# ${name.padEnd(10)} ${String(l.n).padStart(7)} ${l.p50.toFixed(1).padStart(9)} ${l.p99.toFixed(1).padStart(9)} ${l.max.toFixed(1).padStart(9)}`);
  for (const e of r.errorSamples) lines.push(`# error: ${e}`);
  return lines.join("\n");
}
