/**
 * The "stdout streaming" figure's binary arm alone: `cat` of a file through the daemon and through
 * the minimal Node server, alternating, with the server's CPU time per transfer. With --profile DIR
 * both servers run with --cpu-prof (the daemon from dist/) for bench/tools/prof-top.ts.
 * Usage: node --import tsx bench/tools/stream-ab.ts [MiB] [trials] [--profile DIR]
 */
import { readFileSync } from "node:fs";
import { binaryClients } from "../lib/clients.js";
import { dataFile } from "../lib/data.js";
import { useLargeH2Windows } from "../lib/h2-window.js";
import { binaryRun } from "../lib/ops.js";
import { startBaselineServer, startDaemon } from "../lib/procs.js";
import { median, timeMs } from "../lib/stats.js";
import { benchUser } from "../lib/user.js";

useLargeH2Windows();
const args = process.argv.slice(2);
const profileAt = args.indexOf("--profile");
const profileDir = profileAt >= 0 ? args.splice(profileAt, 2)[1] : undefined;
const mib = Number(args[0] ?? 512);
const trials = Number(args[1] ?? 5);
const bytes = mib * 2 ** 20;
const user = benchUser();
const file = dataFile(`stream-${mib}m.txt`, bytes, "text");

function processCpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const prof = profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [];
const servers = {
  daemon: await startDaemon(profileDir ? { build: "dist", nodeArgs: prof } : {}),
  minimal: await startBaselineServer(profileDir ? { nodeArgs: prof } : {}),
};
const clients: Record<string, ReturnType<typeof binaryClients>> = { daemon: binaryClients(servers.daemon.h2Url), minimal: binaryClients(servers.minimal.h2Url) };
const results: Record<string, Array<{ mbps: number; cpuMs: number }>> = { daemon: [], minimal: [] };
for (let t = 0; t < trials; t++) {
  for (const [name, s] of Object.entries(servers)) {
    const c = clients[name]!;
    const cpu0 = processCpuMs(s.pid);
    let n = 0;
    const ms = await timeMs(async () => (n = await binaryRun(c, user, `cat ${file}`)));
    if (n !== bytes) throw new Error(`${name}: got ${n} bytes, expected ${bytes}`);
    results[name]!.push({ mbps: bytes / 1e6 / (ms / 1000), cpuMs: processCpuMs(s.pid) - cpu0 });
  }
}
for (const [name, rs] of Object.entries(results)) {
  const perGiB = (median(rs.map((r) => r.cpuMs)) * 2 ** 30) / bytes;
  console.log(`${name.padEnd(8)} ${median(rs.map((r) => r.mbps)).toFixed(0).padStart(5)} MB/s (runs ${rs.map((r) => r.mbps.toFixed(0)).join(", ")}); server CPU ${perGiB.toFixed(0)} ms per GiB`);
}
await servers.daemon.stop();
await servers.minimal.stop();
