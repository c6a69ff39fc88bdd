import { statSync } from "node:fs";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { resolveRpcUser } from "../../auth/request-user.js";
import type { ProcessConfig, PTY } from "../../gen/process_pb.js";
import type { RequestedExecution } from "../../isolation/execution.js";
import { lookupGroupId, lookupUserByNameOrId, type UserAccount } from "../../users/passwd.js";
import { expandAndResolve } from "../../users/paths.js";
import { composeEnv } from "../env.js";
import type { ProcessSpec, RestartSpec } from "../process-spec.js";
import type { RpcDeps } from "./deps.js";

/** What a Start request (E2B's or the extension's) asks for. */
export interface StartInput {
  config: ProcessConfig | undefined;
  pty: PTY | undefined;
  tag: string | undefined;
  stdin: boolean | undefined;
  captureStdout?: boolean;
  captureStderr?: boolean;
  mergeStderr?: boolean;
  restart?: RestartSpec;
  timeoutMs: number;
  timeoutSlackMs: number;
  /** Extension fields 100-102: another identity, limits and isolation. */
  runAs?: RunAsInput;
  execution?: RequestedExecution;
}

/** envdts.v1.RunAs, decoded. */
export interface RunAsInput {
  user?: string;
  group?: string;
  supplementaryGroups: string[];
  clearSupplementaryGroups: boolean;
}

/** The user and groups a process runs as: the request's user, or what run_as names. */
function resolveIdentity(user: UserAccount, runAs: RunAsInput | undefined): { user: UserAccount; identity: ProcessSpec["identity"] } {
  let u = user;
  if (runAs?.user) {
    const found = lookupUserByNameOrId(runAs.user);
    if (!found) throw new ConnectError(`run_as.user: no user '${runAs.user}' in /etc/passwd`, Code.InvalidArgument);
    u = found;
  }
  let gid = u.gid;
  if (runAs?.group) {
    const g = lookupGroupId(runAs.group);
    if (g === undefined) throw new ConnectError(`run_as.group: no group '${runAs.group}' in /etc/group`, Code.InvalidArgument);
    gid = g;
  }
  let supplementary = u.groups.slice(1);
  if (runAs?.clearSupplementaryGroups) {
    if (runAs.supplementaryGroups.length) throw new ConnectError("run_as: supplementary_groups and clear_supplementary_groups exclude each other", Code.InvalidArgument);
    supplementary = [];
  } else if (runAs?.supplementaryGroups.length) {
    supplementary = runAs.supplementaryGroups.map((name) => {
      const g = lookupGroupId(name);
      if (g === undefined) throw new ConnectError(`run_as.supplementary_groups: no group '${name}' in /etc/group`, Code.InvalidArgument);
      return g;
    });
  }
  const groups = [gid, ...new Set(supplementary.filter((g) => g !== gid))];
  return { user: u, identity: { uid: u.uid, gid, groups } };
}

const NEVER: RestartSpec = { mode: "never", backoffMs: 0, maxBackoffMs: 0, maxRestarts: 0 };

/**
 * Resolves a Start request into a ProcessSpec in E2B's order (docs/protocol.md, "Start"):
 * the user (unauthenticated), the cwd (invalid_argument "cwd '<abs>' does not
 * exist"), then the environment.
 */
export function buildSpec(deps: RpcDeps, hctx: HandlerContext, input: StartInput): ProcessSpec {
  const { state, config } = deps.ctx;
  const requestUser = resolveRpcUser(hctx.requestHeader.get("authorization"), state.defaultUser);
  const { user, identity } = resolveIdentity(requestUser, input.runAs);
  const proc = input.config;
  const cmd = proc?.cmd ?? "";
  const args = proc?.args ?? [];
  const cwd = expandAndResolve(proc?.cwd ?? "", user, state.defaultWorkdir);
  try {
    statSync(cwd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConnectError(`cwd '${cwd}' does not exist`, Code.InvalidArgument);
  }
  const env = composeEnv(user, state.envVars(), proc?.envs ?? {}, process.env.PATH);
  for (const [k, v] of Object.entries(env)) {
    if (k.includes("\0") || v.includes("\0")) throw new ConnectError(`error starting process '${[cmd, ...args].join(" ")}': invalid argument: environment variable contains a NUL byte`, Code.InvalidArgument);
  }
  if ([cmd, ...args].some((a) => a.includes("\0"))) throw new ConnectError(`error starting process '${[cmd, ...args].join(" ")}': invalid argument: argument contains a NUL byte`, Code.InvalidArgument);
  const size = input.pty?.size;
  const myUid = process.getuid?.() ?? 0;
  const execution = deps.policy.resolve(input.execution, identity.uid);
  return {
    config: proc,
    command: [cmd, ...args],
    tag: input.tag,
    user,
    cwd,
    env,
    pty: input.pty ? { cols: size?.cols ?? 0, rows: size?.rows ?? 0 } : undefined,
    stdin: input.stdin === undefined || input.stdin === true,
    captureStdout: input.captureStdout ?? true,
    captureStderr: input.captureStderr ?? true,
    mergeStderr: input.mergeStderr ?? false,
    restart: input.restart ?? NEVER,
    timeoutMs: input.timeoutMs,
    timeoutSlackMs: input.timeoutSlackMs,
    outputBufferBytes: config.outputBufferBytes,
    switchIdentity: myUid === 0 || user.uid !== myUid || input.runAs !== undefined,
    identity,
    execution,
  };
}
