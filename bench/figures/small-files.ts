import { chownSync, closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Sandbox } from "e2b";
import { H2Files, type BinaryClients } from "../lib/clients.js";
import type { FigureGroup } from "../lib/context.js";
import { DATA_DIR } from "../lib/data.js";
import { medianOf } from "../lib/ops.js";
import type { Server } from "../lib/procs.js";
import { interleaved, timeMs, type Figure } from "../lib/stats.js";
import { basicAuth } from "../lib/user.js";

const WRITES = 1000;
const WRITE_ROUNDS = 10;
const STATS = 1000;
const ENTRIES = 10_000;
const KIB = "x".repeat(1024);

/**
 * Small file operations, sequential, daemon ÷ the minimal Node server with the
 * same client: 1000 × 1 KiB writes, 1000 × stat, and listing a directory of
 * 10,000 files.
 */
export const smallFilesGroup: FigureGroup = {
  id: "small-files",
  title: "small file operations",
  async run(ctx) {
    const root = join(DATA_DIR, "small");
    rmSync(root, { recursive: true, force: true });
    const writes = join(root, "writes");
    const listed = join(root, "listed");
    mkdirSync(writes, { recursive: true });
    mkdirSync(listed, { recursive: true });
    chownSync(root, ctx.user.uid, ctx.user.gid);
    chownSync(writes, ctx.user.uid, ctx.user.gid);
    for (let i = 0; i < ENTRIES; i++) closeSync(openSync(join(listed, `entry-${String(i).padStart(5, "0")}.txt`), "w"));
    writeFileSync(join(root, "stat-me.txt"), "hello");

    const d = await ctx.daemon();
    const b = await ctx.baseline();
    const [sbx, bsbx] = [await ctx.sdk(d), await ctx.sdk(b)];
    const [bin, bbin] = [ctx.binary(d), ctx.binary(b)];
    const [dh2, bh2] = [new H2Files(d.h2Url, ctx.user.name), new H2Files(b.h2Url, ctx.user.name)];
    const u = ctx.user.name;
    const auth = { headers: { authorization: basicAuth(ctx.user) } };
    const trials = ctx.trials(3);
    const target = { op: "<=" as const, value: 1.2 };
    // The same writes on tmpfs too: what the daemon's code costs, without this disk's weather.
    const shm = existsSync("/dev/shm") ? "/dev/shm/envd-bench-small-writes" : undefined;
    if (shm) {
      rmSync(shm, { recursive: true, force: true });
      mkdirSync(shm, { recursive: true });
      chownSync(shm, ctx.user.uid, ctx.user.gid);
    }
    const path = (dir: string, s: Server, i: number) => join(dir, `${s === d ? "d" : "b"}-${i}.txt`);

    // Writes go in rounds of 100 that alternate between the servers (see `rounds` below).
    const perRound = WRITES / WRITE_ROUNDS;
    const sdkWrites = (dir: string, s: Sandbox, srv: Server, round: number) => timeMs(async () => {
      for (let i = round * perRound; i < (round + 1) * perRound; i++) await s.files.write(path(dir, srv, i), KIB, { user: u });
    });
    const h2Writes = (dir: string, c: H2Files, srv: Server, round: number) => timeMs(async () => {
      const body = Buffer.from(KIB);
      for (let i = round * perRound; i < (round + 1) * perRound; i++) await c.upload(path(dir, srv, i), body);
    });
    const statPath = join(root, "stat-me.txt");
    const sdkStats = (s: Sandbox) => timeMs(async () => {
      for (let i = 0; i < STATS; i++) await s.files.getInfo(statPath, { user: u });
    });
    const binStats = (c: BinaryClients) => timeMs(async () => {
      for (let i = 0; i < STATS; i++) await c.filesystem.stat({ path: statPath }, auth);
    });
    const sdkList = (s: Sandbox) => medianOf(5, async () => {
      const n = (await s.files.list(listed, { user: u })).length;
      if (n !== ENTRIES) throw new Error(`listed ${n} entries, expected ${ENTRIES}`);
    });
    const binList = (c: BinaryClients) => medianOf(5, async () => {
      const n = (await c.filesystem.listDir({ path: listed, depth: 1 }, auth)).entries.length;
      if (n !== ENTRIES) throw new Error(`listed ${n} entries, expected ${ENTRIES}`);
    });

    const figures: Figure[] = [];
    try {
      // Ext4 here (mounted with discard) commits its journal and writes back in bursts: whole
      // 1000-write trials per server read 1.10× and 1.53× for the same code within minutes;
      // alternating rounds of 100 spread the bursts over both servers.
      for (const [fs, dir] of [["ext4", writes], ...(shm ? [["tmpfs", shm]] : [])] as const) {
        const w = { name: `${WRITES} × 1 KiB writes (${fs})`, unit: "ms", trials, target, rounds: WRITE_ROUNDS };
        const how = `${WRITE_ROUNDS} alternating rounds of ${perRound} per trial`;
        figures.push(await interleaved({ ...w, client: "sdk", baseline: (r) => sdkWrites(dir, bsbx, b, r), daemon: (r) => sdkWrites(dir, sbx, d, r), note: `files.write(path, string): one multipart request each; ${how}` }));
        figures.push(await interleaved({ ...w, client: "binary h2c", baseline: (r) => h2Writes(dir, bh2, b, r), daemon: (r) => h2Writes(dir, dh2, d, r), note: `POST /files octet-stream on one h2c session; ${how}` }));
      }
      const st = { name: `${STATS} × stat`, unit: "ms", trials, target };
      figures.push(await interleaved({ ...st, client: "sdk", baseline: () => sdkStats(bsbx), daemon: () => sdkStats(sbx) }));
      figures.push(await interleaved({ ...st, client: "binary h2c", baseline: () => binStats(bbin), daemon: () => binStats(bin) }));
      const ls = { name: `list of ${ENTRIES} entries`, unit: "ms", trials, target, note: "per trial: median of 5 listings" };
      figures.push(await interleaved({ ...ls, client: "sdk", baseline: () => sdkList(bsbx), daemon: () => sdkList(sbx) }));
      figures.push(await interleaved({ ...ls, client: "binary h2c", baseline: () => binList(bbin), daemon: () => binList(bin) }));
    } finally {
      dh2.close();
      bh2.close();
      rmSync(root, { recursive: true, force: true });
      if (shm) rmSync(shm, { recursive: true, force: true });
    }
    return figures;
  },
};
