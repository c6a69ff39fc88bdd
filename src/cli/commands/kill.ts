import { client, parse, selector, UsageError, type CliContext } from "../context.js";

export const killHelp = `Usage: envd kill [-s SIGNAL] [--group | --tree] [--allow-restart] ID|TAG|pid:PID...

Sends a signal (default SIGTERM) by name or number: "TERM", "SIGUSR1", "9".
  -s, --signal SIG     the signal
  --group              to the process's group
  --tree               to its group, session and every descendant
  --allow-restart      keep the restart policy (by default a killed process stays down)
`;

/** envd kill: any signal to a process, its group or its tree. */
export async function kill(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { signal: { type: "string", short: "s" }, group: { type: "boolean" }, tree: { type: "boolean" }, "allow-restart": { type: "boolean" } });
  if (positionals.length === 0) throw new UsageError("which process? give its ID, TAG or pid:PID");
  const raw = values.signal ?? "TERM";
  const signal = /^\d+$/.test(raw) ? Number(raw) : raw;
  const envd = client(values, ctx.env);
  for (const ref of positionals) {
    await envd.processes.signal(selector(ref), signal, { target: values.tree ? "tree" : values.group ? "group" : "process", stopRestarts: !values["allow-restart"] });
  }
  return 0;
}
