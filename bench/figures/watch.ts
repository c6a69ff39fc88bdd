import { chownSync, existsSync, mkdirSync, rmSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FigureGroup } from "../lib/context.js";
import { DATA_DIR } from "../lib/data.js";
import type { Server } from "../lib/procs.js";
import { interleaved, median } from "../lib/stats.js";
import { basicAuth } from "../lib/user.js";

const K = 20;

/** Resolves waiters by file name as events arrive; the first event for a name wins. */
class Arrivals {
  private waiting = new Map<string, () => void>();
  seen(name: string): void {
    const w = this.waiting.get(name);
    if (w) {
      this.waiting.delete(name);
      w();
    }
  }
  wait(name: string, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(name);
        reject(new Error(`no event for ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(name, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** Creates K files one by one; the median time from the write to its event's arrival, in ms. */
async function latency(dir: string, arrivals: Arrivals, tag: string): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < K; i++) {
    const name = `${tag}-${i}-${Date.now()}.txt`;
    const arrived = arrivals.wait(name);
    const t0 = process.hrtime.bigint();
    writeFileSync(join(dir, name), "x");
    await arrived;
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 2));
  }
  return median(xs);
}

/**
 * Watch event latency: a file created → its event at the client, through the daemon ÷
 * through fs.watch in the bench process; the floor is fs.watch behind connect-node.
 */
export const watchGroup: FigureGroup = {
  id: "watch",
  title: "watch event latency",
  async run(ctx) {
    // On tmpfs when there is one: the latency of the watch path, not of a disk that may still
    // be writing back what the previous groups wrote (a create took ~1 ms then, ~20 µs here).
    const root = existsSync("/dev/shm") ? "/dev/shm/envd-bench-watch" : join(DATA_DIR, "watch");
    rmSync(root, { recursive: true, force: true });
    const dirs = { local: join(root, "local"), sdk: join(root, "sdk"), bin: join(root, "bin"), fsdk: join(root, "fsdk"), fbin: join(root, "fbin") };
    for (const p of [root, ...Object.values(dirs)]) {
      mkdirSync(p, { recursive: true });
      chownSync(p, ctx.user.uid, ctx.user.gid);
    }
    const d = await ctx.daemon();
    const f = await ctx.baseline();

    const local = new Arrivals();
    const watcher = watch(dirs.local, (_type, name) => name && local.seen(String(name)));
    const closers: (() => Promise<void> | void)[] = [() => watcher.close()];
    const viaSdk = async (server: Server, dir: string) => {
      const arrivals = new Arrivals();
      const handle = await (await ctx.sdk(server)).files.watchDir(dir, (ev) => arrivals.seen(ev.name), { user: ctx.user.name, timeoutMs: 0 });
      closers.push(() => handle.stop());
      return arrivals;
    };
    const viaBinary = async (server: Server, dir: string) => {
      const arrivals = new Arrivals();
      const abort = new AbortController();
      const it = ctx.binary(server).filesystem.watchDir({ path: dir }, { headers: { authorization: basicAuth(ctx.user) }, signal: abort.signal, timeoutMs: 0 })[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done || first.value.event.case !== "start") throw new Error("WatchDir did not start");
      void (async () => {
        try {
          for (;;) {
            const r = await it.next();
            if (r.done) return;
            if (r.value.event.case === "filesystem") arrivals.seen(r.value.event.value.name);
          }
        } catch {
          /* aborted at the end */
        }
      })();
      closers.push(() => abort.abort());
      return arrivals;
    };
    const [dSdk, fSdk, dBin, fBin] = [await viaSdk(d, dirs.sdk), await viaSdk(f, dirs.fsdk), await viaBinary(d, dirs.bin), await viaBinary(f, dirs.fbin)];
    try {
      const common = { name: "watch event latency", unit: "ms", trials: ctx.trials(5), target: { op: "<=" as const, value: 2 }, note: `per trial: median of ${K} file creations` };
      const baseline = () => latency(dirs.local, local, "l");
      return [
        await interleaved({ ...common, client: "sdk", baseline, daemon: () => latency(dirs.sdk, dSdk, "s"), floor: () => latency(dirs.fsdk, fSdk, "fs") }),
        await interleaved({ ...common, client: "binary h2c", baseline, daemon: () => latency(dirs.bin, dBin, "b"), floor: () => latency(dirs.fbin, fBin, "fb") }),
      ];
    } finally {
      for (const close of closers) await close();
      rmSync(root, { recursive: true, force: true });
    }
  },
};
