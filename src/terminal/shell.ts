import { create } from "@bufbuild/protobuf";
import { createHandlerContext } from "@connectrpc/connect";
import { Process, ProcessConfigSchema, PTYSchema, PTY_SizeSchema } from "../gen/process_pb.js";
import type { ManagedProcess } from "../process/managed-process.js";
import type { RpcDeps } from "../process/rpc/deps.js";
import { buildSpec } from "../process/rpc/spec.js";
import type { Subscription } from "../process/subscription.js";
import { lookupUser } from "../users/passwd.js";

/** What a terminal page asks for when it opens a new shell. */
export interface ShellRequest {
  /** The account to run as; the daemon's default user when absent. */
  user: string | undefined;
  cols: number;
  rows: number;
}

/** Tag of the shells the web terminal starts (process.Process/List shows it). */
export const TERMINAL_TAG = "web-terminal";

/**
 * Starts the user's login shell on a PTY exactly as process.Process/Start with a PTY would
 * (same user resolution, environment, limits and registry), so it is an ordinary process:
 * listed, signalled and attachable over RPC too. Returns it with a subscription made before
 * launch, so no output is missed.
 */
export async function startShell(deps: RpcDeps, req: ShellRequest): Promise<{ proc: ManagedProcess; sub: Subscription }> {
  const userName = req.user ?? deps.ctx.state.defaultUser;
  const shell = lookupUser(userName)?.shell || "/bin/bash";
  // Built as an RPC context so the request resolves the user the way every RPC does.
  const hctx = createHandlerContext({
    service: Process,
    method: Process.method.start,
    protocolName: "websocket",
    requestMethod: "GET",
    url: "/terminal/ws",
    requestHeader: req.user === undefined ? {} : { authorization: `Basic ${Buffer.from(`${req.user}:`).toString("base64")}` },
  });
  const spec = buildSpec(deps, hctx, {
    config: create(ProcessConfigSchema, { cmd: shell, args: ["-l"], envs: { TERM: "xterm-256color", COLORTERM: "truecolor", LANG: "C.UTF-8" } }),
    pty: create(PTYSchema, { size: create(PTY_SizeSchema, { cols: req.cols, rows: req.rows }) }),
    tag: TERMINAL_TAG,
    stdin: true,
    timeoutMs: 0,
    timeoutSlackMs: 0,
  });
  const proc = deps.registry.create(spec);
  const { sub } = proc.subscribe(false);
  try {
    await proc.launch();
  } catch (err) {
    sub.close();
    throw err;
  }
  return { proc, sub };
}
