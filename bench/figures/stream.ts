import type { Sandbox } from "e2b";
import type { FigureGroup } from "../lib/context.js";
import { dataFile, GiB } from "../lib/data.js";
import { localBatch, sdkCommandLine } from "../lib/local.js";
import { binaryRun } from "../lib/ops.js";
import { RssSampler } from "../lib/rss.js";
import { interleaved, timeMs } from "../lib/stats.js";
import { basicAuth, type BenchUser } from "../lib/user.js";

const BYTES = GiB;

/**
 * The SDK's own client (connect-web over its undici fetch, JSON) reading a
 * Start stream the way CommandHandle does, decoding each chunk as text, but
 * without CommandHandle's one growing string, which V8 caps at 512 MiB.
 */
async function sdkStream(sbx: Sandbox, user: BenchUser, cmd: string): Promise<number> {
  const rpc = (sbx.commands as unknown as { rpc: { start(req: unknown, opts: unknown): AsyncIterable<{ event?: { event: { case: string; value: any } } }> } }).rpc;
  const argv = sdkCommandLine(cmd);
  const decoder = new TextDecoder();
  let n = 0;
  let exit: number | undefined;
  const events = rpc.start(
    { process: { cmd: argv[0], args: argv.slice(1) }, stdin: false },
    { headers: { Authorization: basicAuth(user), "Keepalive-Ping-Interval": "50" }, timeoutMs: 0 },
  );
  for await (const res of events) {
    const ev = res.event?.event;
    if (ev?.case === "data" && ev.value.output.case === "stdout") {
      n += ev.value.output.value.length;
      decoder.decode(ev.value.output.value, { stream: true });
    } else if (ev?.case === "end") exit = ev.value.exitCode;
  }
  if (exit !== 0) throw new Error(`'${cmd}' ended with ${exit}`);
  return n;
}

/** MB/s of `bytes` over `ms`. */
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

/** stdout streaming of 1 GiB: throughput through the daemon ÷ a local pipe read of the same command. */
export const streamGroup: FigureGroup = {
  id: "stream",
  title: "stdout streaming, 1 GiB",
  async run(ctx) {
    const file = dataFile("stream-1g.txt", BYTES, "text");
    const cmd = `cat ${file}`;
    const d = await ctx.largeRunsDaemon();
    const f = await ctx.baseline();
    const [sbx, fsbx] = [await ctx.sdk(d), await ctx.sdk(f)];
    const [bin, fbin] = [ctx.binary(d), ctx.binary(f)];
    const check = (n: number) => {
      if (n !== BYTES) throw new Error(`got ${n} bytes, expected ${BYTES}`);
    };
    const local = async () => {
      const r = await localBatch(ctx.user, sdkCommandLine(cmd), 1);
      check(r.bytes[0]!);
      return mbps(BYTES, r.ms[0]!);
    };
    const common = { name: "stdout streaming, 1 GiB", unit: "MB/s", trials: ctx.trials(3), warmup: 0 };
    const sdkArm = (s: Sandbox) => async () => {
      let n = 0;
      const ms = await timeMs(async () => (n = await sdkStream(s, ctx.user, cmd)));
      check(n);
      return mbps(BYTES, ms);
    };
    const binArm = (c: typeof bin) => async () => {
      let n = 0;
      const ms = await timeMs(async () => (n = await binaryRun(c, ctx.user, cmd)));
      check(n);
      return mbps(BYTES, ms);
    };
    const sampler = new RssSampler(d.pid);
    try {
      return [
        await interleaved({
          ...common,
          client: "sdk",
          target: { op: ">=", value: 0.6 },
          baseline: local,
          daemon: sdkArm(sbx),
          floor: sdkArm(fsbx),
          note: "SDK transport and decoding as commands.run does, minus its single output string (V8 caps strings at 512 MiB)",
        }),
        await interleaved({
          ...common,
          client: "binary h2c",
          target: { op: ">=", value: 0.8 },
          baseline: local,
          daemon: binArm(bin),
          floor: binArm(fbin),
        }),
      ];
    } finally {
      ctx.peaks.push({ run: "stdout streaming", peakBytes: sampler.stop() });
    }
  },
};
