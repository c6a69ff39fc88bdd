import type { FigureGroup } from "../lib/context.js";
import { localBatch, sdkCommandLine } from "../lib/local.js";
import { binaryRun, medianOf, sdkRun } from "../lib/ops.js";
import { interleaved, median } from "../lib/stats.js";

const K = 10;

/** Exec round trip: commands.run('true') as user ÷ a local spawn of `/bin/bash -l -c true` as user. */
export const execGroup: FigureGroup = {
  id: "exec",
  title: "exec round trip",
  async run(ctx) {
    const d = await ctx.daemon();
    const f = await ctx.baseline();
    const [sbx, fsbx] = [await ctx.sdk(d), await ctx.sdk(f)];
    const [bin, fbin] = [ctx.binary(d), ctx.binary(f)];
    const argv = sdkCommandLine("true");
    const local = async () => median((await localBatch(ctx.user, argv, K)).ms);
    const common = { name: "exec round trip, run('true') as user", unit: "ms", trials: ctx.trials(9), target: { op: "<=" as const, value: 1.3 }, note: `per trial: median of ${K} sequential runs` };
    return [
      await interleaved({ ...common, client: "sdk", baseline: local, daemon: () => medianOf(K, () => sdkRun(sbx, ctx.user, "true")), floor: () => medianOf(K, () => sdkRun(fsbx, ctx.user, "true")) }),
      await interleaved({ ...common, client: "binary h2c", baseline: local, daemon: () => medianOf(K, () => binaryRun(bin, ctx.user, "true")), floor: () => medianOf(K, () => binaryRun(fbin, ctx.user, "true")) }),
    ];
  },
};
