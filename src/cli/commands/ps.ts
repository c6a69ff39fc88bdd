import { client, parse, type CliContext } from "../context.js";
import { commandLine, formatBytes, formatDuration, json, outcomeText, processJson, table } from "../format.js";

export const psHelp = `Usage: envd ps [--running | --finished] [--tag TAG] [--json]

Processes the daemon started, running ones first, then finished ones (latest first), with
state, how each ended, restarts and what it used.
  --running            only running processes
  --finished           only finished processes (the history)
  --tag TAG            only processes with this tag
`;

/** envd ps: running and finished processes with state, outcome and usage. */
export async function ps(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parse(args, { running: { type: "boolean" }, finished: { type: "boolean" }, tag: { type: "string" } });
  const filter = values.running && !values.finished ? "running" : values.finished && !values.running ? "finished" : "all";
  const list = await client(values, ctx.env).processes.list({ filter, tag: values.tag });
  if (values.json) {
    ctx.out(json(list.map(processJson)) + "\n");
    return 0;
  }
  const rows = list.map((p) => [
    String(p.id),
    String(p.pid),
    p.tag ?? "",
    p.state,
    p.state === "running" || p.state === "starting" ? "-" : outcomeText(p.exit),
    String(p.restartCount),
    formatDuration((p.usage.cpuUserUs + p.usage.cpuSystemUs) / 1000),
    formatBytes(p.state === "running" ? p.usage.memoryCurrentBytes : p.usage.memoryPeakBytes),
    formatDuration(p.durationMs),
    p.user,
    commandLine(p),
  ]);
  ctx.out(table(["ID", "PID", "TAG", "STATE", "OUTCOME", "RESTARTS", "CPU", "MEM", "TIME", "USER", "COMMAND"], rows));
  return 0;
}
