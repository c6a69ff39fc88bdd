import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { FigureGroup } from "../lib/context.js";
import { daemonFile, defaultDaemonBuild, ROOT, startBareServer, startDaemon, type Server } from "../lib/procs.js";
import { readRss } from "../lib/rss.js";
import { interleaved } from "../lib/stats.js";

const IDLE_SETTLE_MS = 1500;

/** Starts a server, measures its start time, and stops it. */
async function coldStart(start: () => Promise<Server>): Promise<number> {
  const s = await start();
  await s.stop();
  return s.startMs;
}

/** Starts a server, lets it settle after its first /health, reads VmRSS (MiB), stops it. */
async function idleRss(start: () => Promise<Server>): Promise<number> {
  const s = await start();
  try {
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    return readRss(s.pid).rss / 2 ** 20;
  } finally {
    await s.stop();
  }
}

/**
 * Drops a file's pages from the page cache (coreutils: `dd iflag=nocache count=0` advises
 * DONTNEED for the whole file). A release/envd that postject has just written sits in the cache
 * as it was written, and how those pages are grouped decides how much of the executable a start
 * maps: 64.3–68.9 MiB idle straight after a build, 59–62 MiB once read back from disk, for the
 * same file (bench/NOTES.md). Read from disk is what a sandbox booting from its image does, and
 * the state Node's own binary is in; the first trial after this reads it again.
 */
function dropFromPageCache(file: string): void {
  spawnSync("dd", [`if=${file}`, "iflag=nocache", "count=0", "status=none"], { stdio: "ignore" });
}

/** Cold start to the first /health 204, and idle RSS: the daemon ÷ a bare Node HTTP server. */
export const startupGroup: FigureGroup = {
  id: "startup",
  title: "cold start and idle memory",
  async run(ctx) {
    const daemon = () => startDaemon();
    dropFromPageCache(join(ROOT, daemonFile(defaultDaemonBuild)));
    return [
      await interleaved({
        name: "cold start to first /health 204",
        client: "raw http",
        unit: "ms",
        trials: ctx.trials(9),
        target: { op: "<=", value: 1.5 },
        baseline: () => coldStart(startBareServer),
        daemon: () => coldStart(daemon),
        note: "from spawn() to the first 204, polling every 1 ms; baseline: bench/servers/bare-health.mjs",
      }),
      await interleaved({
        name: "RSS idle",
        client: "-",
        unit: "MiB",
        trials: ctx.trials(3),
        warmup: 0,
        target: { op: "<=", value: 1.5 },
        baseline: () => idleRss(startBareServer),
        daemon: () => idleRss(daemon),
        note: `VmRSS ${IDLE_SETTLE_MS} ms after the first /health`,
      }),
    ];
  },
};
