import { chownSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Sandbox } from "e2b";
import { H2Files } from "../lib/clients.js";
import type { FigureGroup } from "../lib/context.js";
import { dataFile, DATA_DIR, GiB, sourceStream, sourceWebStream } from "../lib/data.js";
import type { Server } from "../lib/procs.js";
import { RssSampler } from "../lib/rss.js";
import { interleaved, timeMs, type Figure } from "../lib/stats.js";

const BYTES = GiB;
const mbps = (ms: number) => BYTES / 1e6 / (ms / 1000);

async function sdkUpload(sbx: Sandbox, user: string, path: string): Promise<number> {
  return mbps(await timeMs(() => sbx.files.write(path, sourceWebStream(BYTES), { user })));
}

async function sdkDownload(sbx: Sandbox, user: string, path: string): Promise<number> {
  let n = 0;
  const ms = await timeMs(async () => {
    const body = await sbx.files.read(path, { user, format: "stream" });
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) n += chunk.length;
  });
  if (n !== BYTES) throw new Error(`downloaded ${n} bytes, expected ${BYTES}`);
  return mbps(ms);
}

/**
 * Upload and download of 1 GiB through /files: the daemon ÷ the minimal Node
 * server (busboy and fs streams, no atomic rename) with the same client.
 */
export const transferGroup: FigureGroup = {
  id: "transfer",
  title: "upload and download, 1 GiB",
  async run(ctx) {
    const source = dataFile("xfer-1g.bin", BYTES);
    // Uploads land on tmpfs when there is one: this VM's ext4 (mounted with discard) took
    // seconds to free each replaced 1 GiB file, which was noise for both sides.
    const dir = existsSync("/dev/shm") ? "/dev/shm/envd-bench-uploads" : join(DATA_DIR, "uploads");
    mkdirSync(dir, { recursive: true });
    chownSync(dir, ctx.user.uid, ctx.user.gid);
    const d = await ctx.largeRunsDaemon();
    const b = await ctx.baseline();
    const [sbx, bsbx] = [await ctx.sdk(d), await ctx.sdk(b)];
    const h2 = (s: Server) => new H2Files(s.h2Url, ctx.user.name);
    const [dh2, bh2] = [h2(d), h2(b)];
    /** A fresh target per upload (the last one removed first, untimed): both sides create a new file. */
    const target = (s: Server) => {
      const p = join(dir, s === d ? "daemon.bin" : "baseline.bin");
      rmSync(p, { force: true });
      return p;
    };
    const u = ctx.user.name;
    const common = { unit: "MB/s", trials: ctx.trials(3), warmup: 0, target: { op: ">=" as const, value: 0.9 } };
    const figures: Figure[] = [];
    const sampler = new RssSampler(d.pid);
    try {
      figures.push(
        await interleaved({ ...common, name: "upload, 1 GiB", client: "sdk", baseline: () => sdkUpload(bsbx, u, target(b)), daemon: () => sdkUpload(sbx, u, target(d)), note: "files.write(path, ReadableStream): one streamed application/octet-stream body over HTTP/1.1" }),
        await interleaved({
          ...common,
          name: "upload, 1 GiB",
          client: "binary h2c",
          baseline: async () => {
            const p = target(b);
            return mbps(await timeMs(() => bh2.upload(p, sourceStream(BYTES))));
          },
          daemon: async () => {
            const p = target(d);
            return mbps(await timeMs(() => dh2.upload(p, sourceStream(BYTES))));
          },
          note: "POST /files octet-stream on one h2c session",
        }),
        await interleaved({ ...common, name: "download, 1 GiB", client: "sdk", baseline: () => sdkDownload(bsbx, u, source), daemon: () => sdkDownload(sbx, u, source), note: "files.read(path, {format: 'stream'})" }),
        await interleaved({
          ...common,
          name: "download, 1 GiB",
          client: "binary h2c",
          baseline: async () => mbps(await timeMs(async () => check(await bh2.download(source)))),
          daemon: async () => mbps(await timeMs(async () => check(await dh2.download(source)))),
          note: "GET /files on one h2c session",
        }),
      );
    } finally {
      ctx.peaks.push({ run: "1 GiB uploads and downloads", peakBytes: sampler.stop() });
      dh2.close();
      bh2.close();
      rmSync(dir, { recursive: true, force: true });
    }
    return figures;
  },
};

function check(n: number): void {
  if (n !== BYTES) throw new Error(`downloaded ${n} bytes, expected ${BYTES}`);
}
