/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): the top functions by self time
 * and the top files by total self time, so a hot path shows without a browser.
 *
 *   node --import tsx bench/tools/prof-top.ts FILE.cpuprofile [N]
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: prof-top FILE.cpuprofile [N]\n");
  process.exit(2);
}
const n = Number(process.argv[3] ?? 30);
const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };
const byId = new Map(prof.nodes.map((x) => [x.id, x]));
const selfUs = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + (prof.timeDeltas[i] ?? 0));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const fn = new Map<string, number>();
const urls = new Map<string, number>();
for (const [id, us] of selfUs) {
  const cf = byId.get(id)!.callFrame;
  const short = cf.url.replace(/^.*node_modules\//, "nm:").replace(/^file:\/\/\/work\/main\//, "");
  const key = `${cf.functionName || "(anon)"} ${short}:${cf.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const u = cf.url ? short.replace(/^(nm:(@[^/]+\/)?[^/]+).*/, "$1") : cf.functionName;
  urls.set(u, (urls.get(u) ?? 0) + us);
}
const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5) + "%";
process.stdout.write(`total sampled ${(total / 1000).toFixed(0)} ms\n-- by function (self)\n`);
for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${pct(us)} ${(us / 1000).toFixed(1).padStart(8)} ms  ${k}\n`);
// Inclusive time: each sample counts once for every distinct function on its stack.
const parent = new Map<number, number>();
for (const x of prof.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
const key = (x: Node) => `${x.callFrame.functionName || "(anon)"} ${x.callFrame.url.replace(/^.*node_modules\//, "nm:").replace(/^file:\/\/\/work\/main\//, "")}:${x.callFrame.lineNumber + 1}`;
const incl = new Map<string, number>();
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = key(byId.get(cur)!);
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + us);
  }
}
process.stdout.write(`-- by function (inclusive)\n`);
for (const [k, us] of [...incl].filter(([k]) => !k.startsWith("(root)") && !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${pct(us)} ${(us / 1000).toFixed(1).padStart(8)} ms  ${k}\n`);
process.stdout.write(`-- by file/package (self)\n`);
for (const [k, us] of [...urls].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`${pct(us)} ${(us / 1000).toFixed(1).padStart(8)} ms  ${k}\n`);
