// The body of the load tests (short in `npm test`, long in `npm run test:stress`): runs the
// mixed load, prints the report, then checks errors, memory, descriptors and registries.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon } from "./daemon.js";
import { fdKinds, health, prometheus, waitFor } from "./hostile.js";
import { formatReport, runLoad } from "./load.js";

/** Runs `clients` × `seconds` of mixed load against a fresh daemon and asserts it held up. */
export async function loadTest(clients: number, seconds: number, maxRssGrowthMiB: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "envd-load-"));
  const d = await startDaemon();
  try {
    const report = await runLoad(d, { clients, seconds, dir });
    console.log(formatReport(report));
    assert.equal(report.errors, 0, `unexpected errors:\n${report.errorSamples.join("\n")}`);
    assert.ok(report.ops > clients, `only ${report.ops} operations completed`);
    assert.equal(await health(d.url), 204);
    assert.ok(report.rssMaxMiB - report.rssStartMiB < maxRssGrowthMiB, `RSS grew from ${report.rssStartMiB.toFixed(0)} to ${report.rssMaxMiB.toFixed(0)} MiB`);
    // Everything the clients held is released: processes, subscribers, watchers, descriptors.
    const settled = await waitFor(async () => {
      const m = await prometheus(d.url);
      const fds = fdKinds(d.pid);
      return (
        m.get("envd_processes_active") === 0 &&
        m.get("envd_process_subscribers") === 0 &&
        m.get("envd_watchers_active") === 0 &&
        fds.inotify === report.fdsStart.inotify &&
        fds.total - fds.socket <= report.fdsStart.total - report.fdsStart.socket + 2
      );
    }, 15_000, 250);
    const m = await prometheus(d.url);
    assert.ok(settled, `not released: ${JSON.stringify({ fds: fdKinds(d.pid), start: report.fdsStart, processes: m.get("envd_processes_active"), subscribers: m.get("envd_process_subscribers"), watchers: m.get("envd_watchers_active") })}`);
  } finally {
    assert.equal(await d.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  }
}
