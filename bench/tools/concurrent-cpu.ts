/**
 * Where the "500 concurrent echo commands" figure's time goes: for each arm (500 local spawns,
 * the daemon, the minimal Node server; binary h2c client) its wall time and the CPU time the
 * whole machine spent meanwhile (/proc/stat, every process: shells, servers, client). When the
 * CPU time is close to cores × wall, the arm is CPU-bound, and its wall time cannot drop below
 * its CPU work ÷ cores: the ratio of CPU work is then the floor of the wall-time ratio.
 * Usage: node --import tsx bench/tools/concurrent-cpu.ts [trials]   (after npm run build:release)
 */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { binaryClients } from "../lib/clients.js";
import { localBatch, sdkCommandLine, stopLocalRunner } from "../lib/local.js";
import { binaryRun } from "../lib/ops.js";
import { startBaselineServer, startDaemon } from "../lib/procs.js";
import { median } from "../lib/stats.js";
import { benchUser } from "../lib/user.js";

const N = 500;
const trials = Number(process.argv[2] ?? 5);
const user = benchUser();
const TICK_MS = 1000 / 100; // USER_HZ

/** Busy and total jiffies of all CPUs so far. */
function cpuTicks(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

/** User + system CPU of one process so far, in ms. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

interface ArmSample {
  wallMs: number;
  /** Every process on the machine. */
  cpuMs: number;
  /** The server (daemon or minimal server) and this process (the client). */
  serverCpuMs: number;
  clientCpuMs: number;
}

async function measure(run: () => Promise<unknown>, serverPid: number | undefined): Promise<ArmSample> {
  const c0 = cpuTicks();
  const s0 = serverPid ? processCpuMs(serverPid) : 0;
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const wallMs = performance.now() - t0;
  const u1 = process.cpuUsage(u0);
  const c1 = cpuTicks();
  return { wallMs, cpuMs: (c1.busy - c0.busy) * TICK_MS, serverCpuMs: serverPid ? processCpuMs(serverPid) - s0 : 0, clientCpuMs: (u1.user + u1.system) / 1000 };
}

const d = await startDaemon();
const f = await startBaselineServer();
const [bin, fbin] = [binaryClients(d.h2Url), binaryClients(f.h2Url)];
const argv = sdkCommandLine("echo hello");
const arms: Record<string, () => Promise<unknown>> = {
  local: () => localBatch(user, argv, N, true),
  daemon: () => Promise.all(Array.from({ length: N }, () => binaryRun(bin, user, "echo hello"))),
  minimal: () => Promise.all(Array.from({ length: N }, () => binaryRun(fbin, user, "echo hello"))),
};
const serverPid: Record<string, number | undefined> = { local: undefined, daemon: d.pid, minimal: f.pid };
const results: Record<string, ArmSample[]> = { local: [], daemon: [], minimal: [] };
for (const run of Object.values(arms)) await run(); // warm-up
for (let t = 0; t < trials; t++) {
  for (const [name, run] of Object.entries(arms)) {
    await new Promise((r) => setTimeout(r, 500));
    results[name]!.push(await measure(run, serverPid[name]));
  }
}
const cores = cpus().length;
const localCpu = median(results.local!.map((r) => r.cpuMs));
const localWall = median(results.local!.map((r) => r.wallMs));
for (const [name, rs] of Object.entries(results)) {
  const wall = median(rs.map((r) => r.wallMs));
  const cpu = median(rs.map((r) => r.cpuMs));
  console.log(
    `${name.padEnd(8)} wall ${wall.toFixed(0).padStart(5)} ms (${(wall / localWall).toFixed(2)}× local)  machine CPU ${cpu.toFixed(0).padStart(5)} ms ` +
      `(${(cpu / localCpu).toFixed(2)}× local)  busy ${((cpu / (wall * cores)) * 100).toFixed(0)}% of ${cores} cores;  ` +
      `server ${median(rs.map((r) => r.serverCpuMs)).toFixed(0)} ms, client ${median(rs.map((r) => r.clientCpuMs)).toFixed(0)} ms`,
  );
}
stopLocalRunner();
await d.stop();
await f.stop();
