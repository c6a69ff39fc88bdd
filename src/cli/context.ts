import { parseArgs, type ParseArgsConfig } from "node:util";
import { connect, EnvdError, type EnvdClient, type ProcessSelector } from "../client/index.js";

/** The exit status of a usage error (unknown flag, missing argument), as the daemon's flag errors. */
export const EXIT_USAGE = 2;

/** Raised for a command line that cannot be used; printed with the command's usage. */
export class UsageError extends Error {}

/** What every subcommand gets: where output goes and how to reach the daemon. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  out: (data: string | Uint8Array) => void;
  err: (data: string | Uint8Array) => void;
}

/** Flags every subcommand takes. */
export const COMMON_OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  "access-token": { type: "string" },
  user: { type: "string", short: "u" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const COMMON_HELP = `Common flags:
  --port N             the daemon's port [ENVD_PORT] (default 49983)
  --host H             the daemon's address (default 127.0.0.1)
  --access-token T     the daemon's access token [ENVD_ACCESS_TOKEN]
  -u, --user U         act as this sandbox user (default: the daemon's default user)
  --json               machine-readable output (JSON; one object per line for streams)
`;

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with the common flags, turning its errors into UsageErrors. */
export function parse<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A client for the local daemon, from the common flags and the environment. */
export function client(values: Record<string, unknown>, env: NodeJS.ProcessEnv): EnvdClient {
  const port = (values.port as string | undefined) ?? env.ENVD_PORT ?? "49983";
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new UsageError(`--port: '${port}' is not a port`);
  const host = (values.host as string | undefined) ?? "127.0.0.1";
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const accessToken = (values["access-token"] as string | undefined) ?? (env.ENVD_ACCESS_TOKEN || undefined);
  return connect({ url, accessToken, user: values.user as string | undefined });
}

/** "12" is a daemon id, "pid:1234" a pid, anything else a tag. */
export function selector(ref: string | undefined): ProcessSelector {
  if (!ref) throw new UsageError("which process? give its ID, TAG or pid:PID");
  if (/^\d+$/.test(ref)) return { id: Number(ref) };
  const pid = /^pid:(\d+)$/.exec(ref);
  if (pid) return { pid: Number(pid[1]) };
  return { tag: ref };
}

/** Prints a daemon error as "envd CMD: [code] message" and gives the exit status 1. */
export function reportError(ctx: CliContext, command: string, err: unknown): number {
  if (err instanceof UsageError) {
    ctx.err(`envd ${command}: ${err.message}\nRun 'envd ${command} --help' for usage.\n`);
    return EXIT_USAGE;
  }
  const e = EnvdError.from(err);
  ctx.err(`envd ${command}: ${e.message}\n`);
  return 1;
}
