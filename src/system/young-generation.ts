import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

/**
 * Caps V8's young generation at 4 MiB (2 × 2 MiB semi-spaces) instead of letting it double up to
 * 2 × 16 MiB. A streaming daemon allocates short-lived buffers fast (pipe reads, protobuf writers,
 * envelopes), and in a big young generation tens of MiB of them, with the ArrayBuffer memory they
 * hold, wait for the next scavenge: that was most of the RSS peak while streaming. Node 20 offers
 * only a start flag for the cap (`--max-semi-space-size`), which in NODE_OPTIONS makes V8 reject
 * the single executable's code cache; so the space may grow (factor 2) until it reaches the cap,
 * then stops growing (factor 1, a flag V8 reads each time the space would grow). Measured in
 * bench/NOTES.md item 8: RSS peak +97–116 → +61 MiB; no cap at all (factor 1 from the start)
 * gave +45 MiB but halved binary streaming throughput.
 */
const CAP_BYTES = 4 * 1024 * 1024;

let growing = true;

function enforceCap(): void {
  const size = getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size ?? 0;
  const grow = size < CAP_BYTES;
  if (grow === growing) return;
  growing = grow;
  setFlagsFromString(`--semi-space-growth-factor=${grow ? 2 : 1}`);
}

enforceCap();
// After each GC, the only moment the young generation changes size.
new PerformanceObserver(enforceCap).observe({ entryTypes: ["gc"] });
