import type { ExecutionOptions } from "../isolation/execution.js";
import type { UserAccount } from "../users/passwd.js";
import type { ExitInfo } from "./exit-status.js";

/** Restart policy of a supervised process. */
export interface RestartSpec {
  mode: "never" | "on_failure" | "always";
  backoffMs: number;
  maxBackoffMs: number;
  /** 0: no limit. */
  maxRestarts: number;
}

/** Everything a process is started with, resolved (user, cwd, env) and as requested (config). */
export interface ProcessSpec {
  /** The request's ProcessConfig, echoed by List and GetProcess. */
  config: unknown;
  command: string[];
  tag: string | undefined;
  user: UserAccount;
  cwd: string;
  env: Record<string, string>;
  pty: { cols: number; rows: number } | undefined;
  stdin: boolean;
  captureStdout: boolean;
  captureStderr: boolean;
  mergeStderr: boolean;
  restart: RestartSpec;
  /** Kill deadline of the whole process, 0 for none; reported in outcomes. */
  timeoutMs: number;
  /** Added to timeoutMs before the kill (E2B's stream deadline must fire first). */
  timeoutSlackMs: number;
  outputBufferBytes: number;
  /** Switch to `identity` (false when the daemon itself runs as that user with its groups). */
  switchIdentity: boolean;
  /** uid, primary gid and groups (primary first): the user's, or what run_as chose. */
  identity: { uid: number; gid: number; groups: number[] };
  /** Limits and isolation, resolved against the daemon's policy. */
  execution: ExecutionOptions;
}

/** Lifecycle states (envdts.v1.ProcessState). */
export type ProcessStateName = "starting" | "running" | "stopped" | "error";

/** One run (one pid) of a process. */
export interface RunRecord {
  pid: number;
  startedAt: number;
  finishedAt?: number;
  exit?: ExitInfo;
}
