import type { ProcessInfo, ResourceUsage } from "../../client/index.js";
import { client, parse, UsageError, type CliContext } from "../context.js";
import { commandLine, formatBytes, json, table } from "../format.js";

export const topHelp = `Usage: envd top [-d SECONDS] [-n COUNT] [--json]

Live resource usage: the machine (CPU, memory, load, disk) and each running process (CPU share,
memory, tasks), refreshed every interval until interrupted.
  -d, --delay SECONDS  refresh interval (default 2)
  -n, --iterations N   stop after N refreshes
  --json               one JSON object per refresh
`;

interface ProcessRow {
  id: number;
  pid: number;
  tag?: string;
  command: string;
  cpuPercent: number;
  memoryBytes: number;
  tasks: number;
}

function rows(list: ProcessInfo[], prev: Map<number, { cpuUs: number; at: number }>, now: number): ProcessRow[] {
  return list.map((p) => {
    const cpuUs = p.usage.cpuUserUs + p.usage.cpuSystemUs;
    const before = prev.get(p.id);
    prev.set(p.id, { cpuUs, at: now });
    const cpuPercent = before && now > before.at ? ((cpuUs - before.cpuUs) / 1000 / (now - before.at)) * 100 : 0;
    return { id: p.id, pid: p.pid, tag: p.tag, command: commandLine(p), cpuPercent: Math.max(0, cpuPercent), memoryBytes: p.usage.memoryCurrentBytes, tasks: p.usage.tasksCurrent };
  });
}

function render(u: ResourceUsage, procs: ProcessRow[]): string {
  const mem = `${formatBytes(Number(u.memoryUsedBytes))} / ${formatBytes(Number(u.memoryTotalBytes))}`;
  const disk = `${formatBytes(Number(u.diskUsedBytes))} / ${formatBytes(Number(u.diskTotalBytes))}`;
  const head =
    `envd top - ${new Date().toISOString()}  load ${u.loadAverage1m.toFixed(2)} ${u.loadAverage5m.toFixed(2)} ${u.loadAverage15m.toFixed(2)}\n` +
    `CPU ${u.cpuPercent.toFixed(1)}% of ${u.cpuCount}  Mem ${mem}  Disk ${disk}  envd ${formatBytes(Number(u.daemon?.rssBytes ?? 0))} RSS\n\n`;
  const body = table(
    ["ID", "PID", "TAG", "CPU%", "MEM", "TASKS", "COMMAND"],
    procs.map((p) => [String(p.id), String(p.pid), p.tag ?? "", p.cpuPercent.toFixed(1), formatBytes(p.memoryBytes), String(p.tasks), p.command]),
  );
  return head + body;
}

/** envd top: the usage stream of the machine plus each running process's usage. */
export async function top(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, { delay: { type: "string", short: "d" }, iterations: { type: "string", short: "n" } });
  const delay = Number(values.delay ?? "2");
  if (!(delay >= 0.1 && delay <= 3600)) throw new UsageError(`--delay: '${values.delay}' is not 0.1 to 3600 seconds`);
  const limit = values.iterations === undefined ? Infinity : Number(values.iterations);
  if (!(limit >= 1) || (limit !== Infinity && !Number.isInteger(limit))) throw new UsageError(`--iterations: '${values.iterations}' is not a positive whole number`);
  const envd = client(values, ctx.env);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const redraw = !values.json && process.stdout.isTTY;
  const prev = new Map<number, { cpuUs: number; at: number }>();
  let n = 0;
  try {
    for await (const u of envd.system.watchUsage({ intervalMs: Math.round(delay * 1000), signal: ac.signal })) {
      const procs = rows(await envd.processes.list({ filter: "running", signal: ac.signal }), prev, Date.now());
      if (values.json) ctx.out(json({ usage: u, processes: procs }) + "\n");
      else ctx.out((redraw ? "\x1b[H\x1b[2J" : n > 0 ? "\n" : "") + render(u, procs));
      if (++n >= limit) break;
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  return 0;
}
