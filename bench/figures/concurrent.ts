import type { FigureGroup } from "../lib/context.js";
import { localBatch, sdkCommandLine } from "../lib/local.js";
import { binaryRun, sdkRun } from "../lib/ops.js";
import { interleaved, timeMs } from "../lib/stats.js";

const N = 500;

/** 500 concurrent `echo` commands, wall time ÷ 500 concurrent local spawns of the same command line. */
export const concurrentGroup: FigureGroup = {
  id: "concurrent",
  title: `${N} concurrent echo commands`,
  async run(ctx) {
    const d = await ctx.daemon();
    const f = await ctx.baseline();
    const [sbx, fsbx] = [await ctx.sdk(d), await ctx.sdk(f)];
    const [bin, fbin] = [ctx.binary(d), ctx.binary(f)];
    const argv = sdkCommandLine("echo hello");
    const all = (one: () => Promise<unknown>) => timeMs(() => Promise.all(Array.from({ length: N }, one)));
    const local = async () => (await localBatch(ctx.user, argv, N, true)).wallMs;
    const common = { name: `${N} concurrent echo commands, wall`, unit: "ms", trials: ctx.trials(3), target: { op: "<=" as const, value: 1.5 } };
    return [
      await interleaved({
        ...common,
        client: "sdk",
        baseline: local,
        daemon: () => all(() => sdkRun(sbx, ctx.user, "echo hello")),
        floor: () => all(() => sdkRun(fsbx, ctx.user, "echo hello")),
        note: "the SDK opens at most 200 HTTP/1.1 connections per origin (E2B_ENVD_RPC_CONNECTIONS); the rest queue in the client",
      }),
      await interleaved({
        ...common,
        client: "binary h2c",
        baseline: local,
        daemon: () => all(() => binaryRun(bin, ctx.user, "echo hello")),
        floor: () => all(() => binaryRun(fbin, ctx.user, "echo hello")),
        note: `${N} streams multiplexed on one HTTP/2 connection`,
      }),
    ];
  },
};
