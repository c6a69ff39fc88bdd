// A short mixed load in `npm test`: 50 clients for 10 s running commands, PTYs, uploads,
// downloads, watches and metadata calls. Zero unexpected errors, bounded memory, nothing leaked;
// prints p50/p99 latencies. The long version (200 clients, 60 s) is test/stress/load.test.ts.
import { it } from "node:test";
import { loadTest } from "./helpers/load-test.js";

it("50 concurrent clients for 10 s: no unexpected error, bounded RSS, no leak", { timeout: 120_000 }, async () => {
  await loadTest(Number(process.env.LOAD_CLIENTS ?? 50), Number(process.env.LOAD_SECONDS ?? 10), 300);
});
