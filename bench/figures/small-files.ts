import { chownSync, closeSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
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
    const path = (s: Server, i: number) => join(writes, `${s === d ? "d" : "b"}-${i}.txt`);

    const sdkWrites = (s: Sandbox, srv: Server) => timeMs(async () => {
      for (let i = 0; i < WRITES; i++) await s.files.write(path(srv, i), KIB, { user: u });
    });
    const h2Writes = (c: H2Files, srv: Server) => timeMs(async () => {
      const body = Buffer.from(KIB);
      for (let i = 0; i < WRITES; i++) await c.upload(path(srv, i), body);
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
      const w = { name: `${WRITES} × 1 KiB writes`, unit: "ms", trials, target };
      figures.push(await interleaved({ ...w, client: "sdk", baseline: () => sdkWrites(bsbx, b), daemon: () => sdkWrites(sbx, d), note: "files.write(path, string): one multipart request each" }));
      figures.push(await interleaved({ ...w, client: "binary h2c", baseline: () => h2Writes(bh2, b), daemon: () => h2Writes(dh2, d), note: "POST /files octet-stream on one h2c session" }));
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
    }
    return figures;
  },
};
