// `envd COMMAND`: the extension services for people and scripts inside the sandbox, built on
// envd-ts/client and talking to the local daemon. Loaded only when a subcommand is given, so
// the daemon's own start-up never pays for it.
import { COMMON_HELP, reportError, type CliContext } from "./context.js";
import { exec, execHelp } from "./commands/exec.js";
import { kill, killHelp } from "./commands/kill.js";
import { logs, logsHelp } from "./commands/logs.js";
import { ports, portsHelp } from "./commands/ports.js";
import { proxy, proxyHelp } from "./commands/proxy.js";
import { ps, psHelp } from "./commands/ps.js";
import { top, topHelp } from "./commands/top.js";

type Command = { run: (args: string[], ctx: CliContext) => Promise<number>; help: string; summary: string };

const COMMANDS: Record<string, Command> = {
  ps: { run: ps, help: psHelp, summary: "running and finished processes: state, outcome, usage" },
  logs: { run: logs, help: logsHelp, summary: "a process's held output; -f to follow" },
  exec: { run: exec, help: execHelp, summary: "run a command with limits, hardening and a restart policy" },
  kill: { run: kill, help: killHelp, summary: "send any signal to a process, its group or its tree" },
  top: { run: top, help: topHelp, summary: "live resource usage of the sandbox and its processes" },
  proxy: { run: proxy, help: proxyHelp, summary: "list, add and remove managed proxies" },
  ports: { run: ports, help: portsHelp, summary: "listening ports; expose and unexpose them" },
};

function overview(): string {
  const lines = ["Usage: envd COMMAND [flags]   (envd with no command, or with flags only, runs the daemon: envd --help)", "", "Commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(8)}${c.summary}`);
  lines.push("", COMMON_HELP, "Run 'envd COMMAND --help' for a command's flags.");
  return lines.join("\n") + "\n";
}

/** Runs `envd COMMAND ...` and returns its exit status. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // `envd ps | head` closes the pipe early: that is not an error worth a stack trace.
  process.stdout.on("error", () => process.exit(0));
  const ctx: CliContext = { env, out: (d) => void process.stdout.write(d), err: (d) => void process.stderr.write(d) };
  const [name, ...args] = argv;
  if (name === "help") {
    const c = args[0] ? COMMANDS[args[0]] : undefined;
    ctx.out(c ? c.help + "\n" + COMMON_HELP : overview());
    return 0;
  }
  const command = COMMANDS[name!];
  if (!command) {
    ctx.err(`envd: '${name}' is not a command.\n\n${overview()}`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    ctx.out(command.help + "\n" + COMMON_HELP);
    return 0;
  }
  try {
    return await command.run(args, ctx);
  } catch (err) {
    return reportError(ctx, name!, err);
  }
}
