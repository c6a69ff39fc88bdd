/**
 * Quick A/B of the "list of 10,000 entries" figure without the whole bench: the daemon
 * (dist/ build) against the minimal Node server, binary h2c and SDK clients, interleaved as
 * bench/lib/stats.ts does, plus how long a concurrent Stat waits while a listing runs.
 * Usage: node --import tsx bench/tools/list-dir-ab.ts [trials]
 */
import { closeSync, mkdirSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { binaryClients, sdkSandbox } from "../lib/clients.js";
import { DATA_DIR } from "../lib/data.js";
import { startBaselineServer, startDaemon } from "../lib/procs.js";
import { interleaved, median, timeMs } from "../lib/stats.js";
import { basicAuth, benchUser } from "../lib/user.js";
import { native } from "../../src/native.js";

const ENTRIES = 10_000;
const trials = Number(process.argv[2] ?? 20);
const user = benchUser();
const auth = { headers: { authorization: basicAuth(user) } };
const listed = join(DATA_DIR, "list-ab");
rmSync(listed, { recursive: true, force: true });
mkdirSync(listed, { recursive: true });
for (let i = 0; i < ENTRIES; i++) {
  const p = join(listed, `entry-${String(i).padStart(5, "0")}.txt`);
  closeSync(openSync(p, "w"));
  if (i % 1000 === 0) native().setXattr(p, "user.e2b.owner", Buffer.from(`n${i}`));
}

const d = await startDaemon({ build: "dist" });
const b = await startBaselineServer();
try {
  const [bin, bbin] = [binaryClients(d.h2Url), binaryClients(b.h2Url)];
  const [sbx, bsbx] = [await sdkSandbox(d.url), await sdkSandbox(b.url)];
  const binList = (c: typeof bin) => timeMs(async () => {
    const n = (await c.filesystem.listDir({ path: listed, depth: 1 }, auth)).entries.length;
    if (n !== ENTRIES) throw new Error(`listed ${n}`);
  });
  const sdkList = (s: typeof sbx) => timeMs(async () => {
    const n = (await s.files.list(listed, { user: user.name })).length;
    if (n !== ENTRIES) throw new Error(`listed ${n}`);
  });
  const target = { op: "<=" as const, value: 1.2 };
  for (const [client, base, daemon] of [
    ["binary h2c", () => binList(bbin), () => binList(bin)],
    ["sdk", () => sdkList(bsbx), () => sdkList(sbx)],
  ] as const) {
    const f = await interleaved({ name: "list", client, unit: "ms", trials, target, baseline: base, daemon, warmup: 2 });
    console.log(`${client}: daemon ${f.daemon.toFixed(1)} ms, minimal ${f.baseline.toFixed(1)} ms, ratio ${f.ratio.toFixed(2)} (p90 ${f.p90.toFixed(2)})`);
  }
  // A second client's Stat while listings run on the daemon: how long does it wait?
  const other = binaryClients(d.h2Url);
  const waits: number[] = [];
  for (let i = 0; i < 10; i++) {
    const listing = binList(bin);
    await new Promise((r) => setTimeout(r, 5));
    waits.push(await timeMs(() => other.filesystem.stat({ path: listed }, auth)));
    await listing;
  }
  console.log(`stat during a listing: median ${median(waits).toFixed(1)} ms, max ${Math.max(...waits).toFixed(1)} ms`);
} finally {
  await d.stop();
  await b.stop();
  rmSync(listed, { recursive: true, force: true });
}
process.exit(0);
