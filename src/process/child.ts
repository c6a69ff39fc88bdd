import type { RawExit } from "./exit-status.js";
import type { LaunchFailure, LaunchOptions } from "./launcher.js";
import type { StreamKind } from "./output-ring.js";

/** What a started child reports to its process. */
export interface ChildEvents {
  data(stream: StreamKind, data: Buffer): void;
  /** Every captured output reached EOF (or was abandoned). */
  outputEnd(): void;
  /** The child was reaped. */
  exit(raw: RawExit): void;
}

/** What the process needs to start a child; the pipe and PTY spawners share it. */
export interface ChildSpec {
  /** [cmd, ...args] */
  command: string[];
  env: Record<string, string>;
  cwd: string;
  /** The identity to switch to; undefined keeps the daemon's. */
  identity: { uid: number; gid: number; groups: number[] } | undefined;
  pty: { cols: number; rows: number } | undefined;
  /** A stdin pipe (true) or /dev/null (false). Ignored for PTYs. */
  stdin: boolean;
  captureStdout: boolean;
  captureStderr: boolean;
  mergeStderr: boolean;
  /** Limits and isolation for the launcher (cgroup, rlimits, mounts, capabilities, seccomp). */
  isolation?: LaunchOptions;
}

/**
 * A spawned child (pipes or PTY). Output only flows after start(), so the
 * process can announce the pid before any data.
 */
export interface ChildIO {
  /** The command's pid (what clients see). */
  readonly pid: number;
  /** The session the command runs in (tree kills reach all of it). */
  readonly sessionId: number;
  /** A PTY's keeper (session leader waiting for the output to drain); never signalled by tree kills. */
  readonly keeperPid: number | undefined;
  readonly isPty: boolean;
  /** Its exit carries what it used (RawExit.rusage), so no sample is needed to catch a short run. */
  readonly exitReportsUsage: boolean;
  /** Set when the launcher failed before or at exec. */
  readonly launchFailure: LaunchFailure | undefined;
  start(events: ChildEvents): void;
  pause(): void;
  resume(): void;
  /** Whether a stdin pipe is still open. */
  readonly stdinOpen: boolean;
  writeStdin(data: Buffer): Promise<void>;
  closeStdin(): Promise<void>;
  writePty(data: Buffer): void;
  resize(cols: number, rows: number): void;
  /** Stops reading output that is still open (a killed tree's escapee holds it); outputEnd follows. */
  abandonOutput(): void;
  /** Releases every descriptor once the run is over. */
  dispose(): void;
}

/** A spawn failure before the child existed (or while its launcher set it up). */
export class SpawnError extends Error {
  constructor(
    message: string,
    readonly failure: LaunchFailure | undefined,
  ) {
    super(message);
  }
}
