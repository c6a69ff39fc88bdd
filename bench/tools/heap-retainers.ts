/**
 * Finds what keeps ArrayBuffers alive in a V8 heap snapshot (node
 * --heapsnapshot-signal): groups the largest backing stores by their shortest
 * retainer path to a GC root, so a leak of output chunks shows its owner.
 *
 *   node --import tsx bench/tools/heap-retainers.ts FILE.heapsnapshot
 */
import { readFileSync } from "node:fs";

const snap = JSON.parse(readFileSync(process.argv[2]!, "utf8"));
const m = snap.snapshot.meta;
const NF = m.node_fields.length;
const EF = m.edge_fields.length;
const nodeTypes: string[] = m.node_types[0];
const edgeTypes: string[] = m.edge_types[0];
const nodes: number[] = snap.nodes;
const edges: number[] = snap.edges;
const strings: string[] = snap.strings;
const fi = (n: string) => m.node_fields.indexOf(n);
const ei = (n: string) => m.edge_fields.indexOf(n);
const [T, N, ID, SZ, EC] = [fi("type"), fi("name"), fi("id"), fi("self_size"), fi("edge_count")];
const [ET, EN, ETO] = [ei("type"), ei("name_or_index"), ei("to_node")];
const count = nodes.length / NF;
const firstEdge = new Int32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) {
  firstEdge[i] = e;
  e += nodes[i * NF + EC]! * EF;
}
firstEdge[count] = edges.length;
// Reverse edges: retainers of each node.
const retainers: number[][] = Array.from({ length: count }, () => []);
const retEdge: number[][] = Array.from({ length: count }, () => []);
for (let i = 0; i < count; i++) {
  for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EF) {
    const to = edges[e + ETO]! / NF;
    if (edgeTypes[edges[e + ET]!] === "weak") continue;
    retainers[to]!.push(i);
    retEdge[to]!.push(e);
  }
}
// BFS distances from the root (node 0).
const dist = new Int32Array(count).fill(-1);
dist[0] = 0;
const q = [0];
for (let h = 0; h < q.length; h++) {
  const i = q[h]!;
  for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += EF) {
    if (edgeTypes[edges[e + ET]!] === "weak") continue;
    const to = edges[e + ETO]! / NF;
    if (dist[to] === -1) {
      dist[to] = dist[i]! + 1;
      q.push(to);
    }
  }
}
const label = (i: number) => `${nodeTypes[nodes[i * NF + T]!]}:${strings[nodes[i * NF + N]!]}`.slice(0, 80);
const edgeName = (e: number) => (edgeTypes[edges[e + ET]!] === "element" || edgeTypes[edges[e + ET]!] === "hidden" ? `[${edges[e + EN]}]` : strings[edges[e + EN]!]);
const paths = new Map<string, { n: number; bytes: number }>();
for (let i = 0; i < count; i++) {
  const name = strings[nodes[i * NF + N]!];
  if (nodeTypes[nodes[i * NF + T]!] !== "native" || !/system \/ JSArrayBufferData|backing_store/i.test(name ?? "")) continue;
  const size = nodes[i * NF + SZ]!;
  if (size < 4096) continue;
  // Walk the shortest retainer chain up to 12 steps.
  const chain: string[] = [];
  let cur = i;
  for (let step = 0; step < 12 && cur !== 0; step++) {
    let best = -1;
    let bestE = -1;
    retainers[cur]!.forEach((r, k) => {
      if (dist[r]! >= 0 && (best === -1 || dist[r]! < dist[best]!)) {
        best = r;
        bestE = retEdge[cur]![k]!;
      }
    });
    if (best === -1) break;
    chain.push(`${label(best)}.${edgeName(bestE)}`);
    cur = best;
  }
  const key = chain.join(" <- ");
  const p = paths.get(key) ?? { n: 0, bytes: 0 };
  p.n++;
  p.bytes += size;
  paths.set(key, p);
}
for (const [k, p] of [...paths].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 8)) {
  process.stdout.write(`${(p.bytes / 2 ** 20).toFixed(1)} MiB in ${p.n} buffers:\n  ${k.split(" <- ").join("\n  <- ")}\n`);
}
