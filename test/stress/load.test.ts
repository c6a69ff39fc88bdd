// The long load run of `npm run test:stress`: 200 concurrent clients for 60 s (STRESS_CLIENTS,
// STRESS_SECONDS override) mixing commands, PTYs, uploads, downloads and watches. Zero unexpected
// errors, bounded RSS, no leaked descriptors, watchers or subscribers; p50/p99 latencies printed.
import { it } from "node:test";
import { loadTest } from "../helpers/load-test.js";

it("200 concurrent clients for 60 s: no unexpected error, bounded RSS, no leak", { timeout: 600_000 }, async () => {
  await loadTest(Number(process.env.STRESS_CLIENTS ?? 200), Number(process.env.STRESS_SECONDS ?? 60), 500);
});
