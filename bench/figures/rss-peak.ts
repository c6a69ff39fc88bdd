import type { BenchContext } from "../lib/context.js";
import type { Figure } from "../lib/stats.js";

const MiB = 2 ** 20;
const LIMIT_MIB = 64;

/**
 * RSS peak during the 1 GiB transfers and the streaming run, as growth over the
 * daemon's idle RSS (target: at most 64 MiB). Built from the peaks the stream
 * and transfer groups recorded; absent when neither ran.
 */
export function rssPeakFigure(ctx: BenchContext): Figure | undefined {
  if (ctx.peaks.length === 0) return undefined;
  const peak = Math.max(...ctx.peaks.map((p) => p.peakBytes));
  const growth = (peak - ctx.daemonIdleRss) / MiB;
  return {
    name: "RSS peak − idle, 1 GiB runs",
    client: "-",
    ratio: growth,
    p90: growth,
    target: { op: "<=", value: LIMIT_MIB },
    pass: growth <= LIMIT_MIB,
    daemon: peak / MiB,
    baseline: ctx.daemonIdleRss / MiB,
    unit: "MiB",
    trials: 1,
    note: `ratio column is MiB over idle here; peaks: ${ctx.peaks.map((p) => `${p.run} ${(p.peakBytes / MiB).toFixed(0)} MiB`).join(", ")}; VmHWM reset before each run, VmRSS sampled every 50 ms`,
  };
}
