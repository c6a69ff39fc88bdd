/**
 * `npm run bench`: every performance figure (docs/performance.md) as daemon ÷ baseline, measured in one
 * run with interleaved trials. Prints the table, writes bench/results/latest.json
 * and latest.md. Method and findings: bench/NOTES.md.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseBenchArgs } from "./lib/cli.js";
import { BenchContext, type FigureGroup } from "./lib/context.js";
import { machineFacts } from "./lib/machine.js";
import { formatTable, type Figure } from "./lib/stats.js";
import { concurrentGroup } from "./figures/concurrent.js";
import { execGroup } from "./figures/exec.js";
import { ptyGroup } from "./figures/pty.js";
import { rssPeakFigure } from "./figures/rss-peak.js";
import { smallFilesGroup } from "./figures/small-files.js";
import { startupGroup } from "./figures/startup.js";
import { streamGroup } from "./figures/stream.js";
import { textDownloadGroup } from "./figures/text-download.js";
import { transferGroup } from "./figures/transfer.js";
import { watchGroup } from "./figures/watch.js";
import { useLargeH2Windows } from "./lib/h2-window.js";
import { stopLocalRunner } from "./lib/local.js";
import { setDefaultDaemonBuild } from "./lib/procs.js";

/** In run order (the table's). Startup first, while nothing else runs. */
const GROUPS: FigureGroup[] = [startupGroup, execGroup, concurrentGroup, streamGroup, transferGroup, textDownloadGroup, smallFilesGroup, watchGroup, ptyGroup];

/**
 * Between groups: flush dirty pages and let the disk settle, so one group's writes (and the
 * discards of what it replaced) do not slow the next group's file operations.
 */
async function settle(): Promise<void> {
  execFileSync("sync");
  await new Promise((r) => setTimeout(r, 2000));
}

async function main(): Promise<void> {
  let opts;
  try {
    opts = parseBenchArgs(process.argv.slice(2), GROUPS.map((g) => g.id));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("the bench runs the daemon as root (it switches users); run it as root\n");
    process.exit(2);
  }
  const machine = machineFacts();
  process.stderr.write(`envd-ts bench on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.kernel}, node ${machine.node}; daemon build: ${opts.daemon}\n`);
  useLargeH2Windows();
  setDefaultDaemonBuild(opts.daemon);
  const ctx = new BenchContext(opts);
  const figures: Figure[] = [];
  const started = Date.now();
  try {
    for (const g of GROUPS) {
      if (opts.only.length && !opts.only.includes(g.id)) continue;
      await settle();
      process.stderr.write(`[${g.id}] ${g.title}\n`);
      const t = Date.now();
      try {
        const got = await g.run(ctx);
        figures.push(...got);
        process.stderr.write(formatTable(got) + `\n  (${((Date.now() - t) / 1000).toFixed(1)} s)\n`);
      } catch (err) {
        process.stderr.write(`  FAILED: ${(err as Error).stack ?? err}\n`);
        figures.push({ name: g.title, client: "-", ratio: NaN, p90: NaN, target: { op: "<=", value: NaN }, pass: false, daemon: NaN, baseline: NaN, unit: "", trials: 0, note: `failed: ${(err as Error).message}` });
      }
    }
    const peak = rssPeakFigure(ctx);
    if (peak) figures.push(peak);
  } finally {
    await ctx.close();
    stopLocalRunner();
  }
  const table = formatTable(figures);
  process.stdout.write(`\n${table}\n`);
  const seconds = Math.round((Date.now() - started) / 1000);
  if (!opts.noWrite) {
    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(join(opts.outDir, "latest.json"), JSON.stringify({ machine, daemonBuild: opts.daemon, seconds, options: { only: opts.only, trials: opts.trials }, figures }, null, 2) + "\n");
    writeFileSync(join(opts.outDir, "latest.md"), markdown(figures, machine, seconds, opts.daemon));
    process.stderr.write(`wrote ${join(opts.outDir, "latest.json")} and latest.md (${seconds} s)\n`);
  }
  // Open SDK and h2 connections would keep the loop alive.
  process.exit(figures.every((f) => f.pass) ? 0 : 1);
}

function markdown(figures: Figure[], m: ReturnType<typeof machineFacts>, seconds: number, build: string): string {
  const notes = figures.filter((f) => f.note).map((f) => `- **${f.name}** (${f.client}): ${f.note}`);
  return [
    `## Benchmark results`,
    ``,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.kernel}, Node ${m.node}. Run ${m.date} (${seconds} s). Daemon build: ${build}.`,
    ``,
    `ratio = daemon ÷ baseline, the median of the per-trial ratios over interleaved trials; p90 is the pessimistic`,
    `90th percentile of those ratios (the 10th for throughput). floor = the minimal Node server`,
    `(bench/servers/baseline-server.ts) with the same client ÷ the same baseline: what any Node daemon reaches.`,
    `daemon and baseline are the medians of the raw values.`,
    ``,
    formatTable(figures),
    ``,
    ...(notes.length ? [`Notes:`, ``, ...notes, ``] : []),
  ].join("\n");
}

void main();
