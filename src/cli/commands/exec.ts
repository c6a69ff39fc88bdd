import { EnvdError, parseDurationMs, type ProcessesApi, type ProcessSelector, type RestartMode, type StartOptions } from "../../client/index.js";
import { client, parse, UsageError, type CliContext } from "../context.js";
import { json, outcomeText, shellStatus } from "../format.js";

export const execHelp = `Usage: envd exec [flags] -- CMD [ARG...]

Runs a command through the daemon, with limits, hardening and a restart policy, printing its
output as it comes. Exits with the command's exit code, 128+N when signal N ended it (137 for
an OOM kill), 125 when the daemon refused to start it.
  --memory SIZE          memory limit, e.g. 256M (the OOM killer ends the command above it)
  --cpu-time DURATION    CPU time limit of the whole tree, e.g. 10s
  --cpus N               CPU bandwidth in cores, e.g. 0.5
  --pids N               process and thread limit
  --nofile N             open file limit
  --timeout DURATION     kill the tree after this long (across restarts)
  --restart MODE         never (default), on-failure or always
  --max-restarts N       restarts allowed (0: no limit)
  --backoff DURATION     delay before the first restart (doubles per restart)
  --tag TAG              a name for envd logs, envd kill and envd ps
  --cwd DIR              working directory
  -e, --env K=V          an environment variable (repeatable)
  --group G              primary group to run as
  --no-new-privs         setuid programs grant nothing
  --drop-cap CAP         drop a capability, or ALL (repeatable)
  --seccomp PROFILE      default or none
  --merge-stderr         send stderr into stdout, in order
  -i, --interactive      forward this terminal's stdin to the command
  -d, --detach           print the process id and return once it started
  --json                 one JSON object per event (started, output, exited)
`;

/** Builds the start request from the flags. */
function startOptions(values: Record<string, string | boolean | (string | boolean)[] | undefined>, argv: string[]): StartOptions {
  const [cmd, ...rest] = argv;
  if (!cmd) throw new UsageError("no command: envd exec [flags] -- CMD [ARG...]");
  const str = (k: string) => values[k] as string | undefined;
  const int = (k: string) => {
    const v = str(k);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new UsageError(`--${k}: '${v}' is not a whole number`);
    return Number(v);
  };
  const envs: Record<string, string> = {};
  for (const kv of (values.env as string[] | undefined) ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env: '${kv}' is not K=V`);
    envs[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const mode = str("restart");
  if (mode !== undefined && !["never", "on-failure", "always"].includes(mode)) throw new UsageError(`--restart: '${mode}' is not never, on-failure or always`);
  const cpus = str("cpus");
  if (cpus !== undefined && !(Number(cpus) > 0)) throw new UsageError(`--cpus: '${cpus}' is not a positive number`);
  const drop = (values["drop-cap"] as string[] | undefined) ?? [];
  const seccomp = str("seccomp");
  const security = values["no-new-privs"] || drop.length || seccomp ? { noNewPrivs: values["no-new-privs"] ? true : undefined, dropCapabilities: drop, seccomp: seccomp ? { profile: seccomp } : undefined } : undefined;
  const limits = { memory: str("memory"), cpuTime: str("cpu-time"), cpuCores: cpus === undefined ? undefined : Number(cpus), pids: int("pids"), nofile: int("nofile") };
  const backoff = str("backoff");
  return {
    cmd,
    args: rest,
    envs,
    cwd: str("cwd"),
    tag: str("tag"),
    stdin: Boolean(values.interactive),
    output: values["merge-stderr"] ? { mergeStderr: true } : undefined,
    restart: mode || int("max-restarts") !== undefined || backoff ? { mode: (mode ?? "never") as RestartMode, maxRestarts: int("max-restarts"), backoffMs: backoff === undefined ? undefined : parseDurationMs(backoff) } : undefined,
    timeout: str("timeout"),
    limits: Object.values(limits).some((v) => v !== undefined) ? limits : undefined,
    runAs: str("group") ? { group: str("group") } : undefined,
    security,
  };
}

/** envd exec: start a command with limits and a restart policy, stream it, exit with its status. */
export async function exec(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, {
    memory: { type: "string" },
    "cpu-time": { type: "string" },
    cpus: { type: "string" },
    pids: { type: "string" },
    nofile: { type: "string" },
    timeout: { type: "string" },
    restart: { type: "string" },
    "max-restarts": { type: "string" },
    backoff: { type: "string" },
    tag: { type: "string" },
    cwd: { type: "string" },
    env: { type: "string", short: "e", multiple: true },
    group: { type: "string" },
    "no-new-privs": { type: "boolean" },
    "drop-cap": { type: "string", multiple: true },
    seccomp: { type: "string" },
    "merge-stderr": { type: "boolean" },
    interactive: { type: "boolean", short: "i" },
    detach: { type: "boolean", short: "d" },
  });
  let options: StartOptions;
  try {
    options = startOptions(values, positionals);
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(err.message);
    throw err;
  }
  const envd = client(values, ctx.env);
  let proc;
  try {
    proc = await envd.processes.start(options);
  } catch (err) {
    ctx.err(`envd exec: ${EnvdError.from(err).message}\n`);
    return 125;
  }
  const ref: ProcessSelector = { id: proc.id };
  if (values.detach) {
    ctx.out(values.json ? json({ id: proc.id, pid: proc.pid, tag: options.tag }) + "\n" : `${proc.id}\n`);
    return 0;
  }
  // Signals for this command go to the command's process group, as a shell's job control would.
  const forward = (sig: NodeJS.Signals) => void envd.processes.signal(ref, sig, { target: "group" }).catch(() => {});
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];
  for (const s of signals) process.on(s, forward);
  if (values.interactive) void pumpStdin(envd.processes, ref);
  try {
    let final;
    for await (const ev of proc) {
      if (values.json) ctx.out(json(ev) + "\n");
      else if (ev.type === "output") (ev.stream === "stderr" ? ctx.err : ctx.out)(ev.data);
      else if (ev.type === "exited") {
        if (!ev.final) ctx.err(`envd exec: run ended (${outcomeText(ev.exit)}); restarting in ${ev.restartDelayMs} ms\n`);
        else final = ev.exit;
      }
    }
    if (!final) {
      ctx.err("envd exec: the daemon closed the stream before the command ended\n");
      return 125;
    }
    if (!values.json && final.outcome !== "exited") ctx.err(`envd exec: ${outcomeText(final)}${final.error ? `: ${final.error}` : ""}\n`);
    return shellStatus(final);
  } finally {
    for (const s of signals) process.off(s, forward);
    if (values.interactive) process.stdin.destroy();
  }
}

/** Local stdin to the command's stdin, then EOF. */
async function pumpStdin(processes: ProcessesApi, ref: ProcessSelector): Promise<void> {
  try {
    for await (const chunk of process.stdin) await processes.sendInput(ref, chunk as Buffer);
    await processes.closeStdin(ref);
  } catch {
    /* the command ended first */
  }
}
