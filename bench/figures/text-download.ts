import type { Sandbox } from "e2b";
import { request } from "node:http";
import type { FigureGroup } from "../lib/context.js";
import { dataFile, MiB } from "../lib/data.js";
import { interleaved, timeMs, type Figure } from "../lib/stats.js";

const TEXT_BYTES = 64 * MiB;
const textMbps = (ms: number) => TEXT_BYTES / 1e6 / (ms / 1000);

/** files.read of the compressible text file as `format`; throws unless every byte came back. */
async function sdkReadText(sbx: Sandbox, user: string, path: string, format: "text" | "bytes"): Promise<number> {
  let n = 0;
  const ms = await timeMs(async () => {
    const r = format === "text" ? await sbx.files.read(path, { user, format: "text" }) : await sbx.files.read(path, { user, format: "bytes" });
    n = r.length;
  });
  if (n !== TEXT_BYTES) throw new Error(`read ${n} bytes, expected ${TEXT_BYTES}`);
  return textMbps(ms);
}

/** GET /files with fetch()'s own headers (it adds `Accept-Encoding: gzip, deflate` and decodes). */
async function fetchDownload(url: string, user: string, path: string): Promise<number> {
  let n = 0;
  const ms = await timeMs(async () => {
    const res = await fetch(`${url}/files?path=${encodeURIComponent(path)}&username=${encodeURIComponent(user)}`);
    n = (await res.arrayBuffer()).byteLength;
  });
  if (n !== TEXT_BYTES) throw new Error(`fetched ${n} bytes, expected ${TEXT_BYTES}`);
  return textMbps(ms);
}

/** GET /files with node:http and `Accept-Encoding: gzip` (curl --compressed, a browser): bytes on the wire, not decoded. */
function gzipAskedDownload(url: string, user: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const req = request(`${url}/files?path=${encodeURIComponent(path)}&username=${encodeURIComponent(user)}`, { headers: { "accept-encoding": "gzip" } }, (res) => {
      res.on("data", () => {});
      res.on("end", () => resolve(textMbps(Number(process.hrtime.bigint() - t) / 1e6)));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Downloads of 64 MiB of compressible text (an application log): the daemon ÷ the
 * minimal Node server, which sends files plain, with the same client. The SDK's
 * transport asks for gzip on every request; a gzipped answer costs the client more
 * to decode than the bytes it saves on a local link.
 */
export const textDownloadGroup: FigureGroup = {
  id: "text-download",
  title: "download, 64 MiB of compressible text",
  async run(ctx) {
    const text = dataFile("text-64m.log", TEXT_BYTES, "log");
    const d = await ctx.largeRunsDaemon();
    const b = await ctx.baseline();
    const [sbx, bsbx] = [await ctx.sdk(d), await ctx.sdk(b)];
    const u = ctx.user.name;
    const common = { unit: "MB/s", trials: ctx.trials(5), warmup: 1, target: { op: ">=" as const, value: 0.9 } };
    const figures: Figure[] = [];
    // The SDK's formats (its fetch sends `Accept-Encoding: gzip, deflate`), plain fetch(),
    // and a client that asks for gzip alone.
    for (const format of ["text", "bytes"] as const) {
      figures.push(
        await interleaved({
          ...common,
          name: "download, 64 MiB compressible text",
          client: `sdk ${format}`,
          baseline: () => sdkReadText(bsbx, u, text, format),
          daemon: () => sdkReadText(sbx, u, text, format),
          note: `files.read(path, {format: '${format}'}); the SDK's fetch sends Accept-Encoding: gzip, deflate`,
        }),
      );
    }
    figures.push(
      await interleaved({
        ...common,
        name: "download, 64 MiB compressible text",
        client: "fetch()",
        baseline: () => fetchDownload(b.url, u, text),
        daemon: () => fetchDownload(d.url, u, text),
        note: "fetch() with its own headers (Accept-Encoding: gzip, deflate), arrayBuffer()",
      }),
      await interleaved({
        ...common,
        target: { op: ">=", value: 0.5 },
        name: "download, 64 MiB compressible text",
        client: "http, gzip asked",
        baseline: () => gzipAskedDownload(b.url, u, text),
        daemon: () => gzipAskedDownload(d.url, u, text),
        note: "node:http with Accept-Encoding: gzip, body not decoded: the daemon gzips (about 1/5 on the wire), the baseline sends it plain; MB/s of the file",
      }),
    );
    return figures;
  },
};
