import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, type Client } from "@connectrpc/connect";
import {
  ListProcessesRequest_Filter,
  SignalRequest_Target,
  type ProcessControl,
  type ProcessRefSchema,
  type ProcessSecuritySchema,
  type StartProcessRequestSchema,
} from "../gen/envdts/v1/process_ext_pb.js";
import type { Process } from "../gen/process_pb.js";
import { EnvdError, call, iterate } from "./errors.js";
import { ProcessStream } from "./process-stream.js";
import { restartMode, toEvent, toInfo, type ProcessEvent, type ProcessInfo, type RestartMode } from "./process-types.js";
import { parseBytes, parseDurationMs } from "./units.js";

/** Which process: by tag, by daemon id (stable across restarts), or by pid. A string is a tag. */
export type ProcessSelector = string | { tag: string } | { id: number } | { pid: number };

/** Per-call options. */
export interface CallOptions {
  /** Abort the call (a stream ends with an EnvdError "canceled"). */
  signal?: AbortSignal;
  /** Deadline of the call itself, in ms. */
  timeoutMs?: number;
}

/** Limits of a process and everything it starts; unset fields take the daemon's defaults, 0 lifts one. */
export interface Limits {
  /** Memory, swap included: bytes or "256M". Above it the OOM killer ends the process (outcome "oom_killed"). */
  memory?: number | string;
  /** CPU time of the whole tree, user plus system: ms or "10s" (outcome "cpu_limit"). */
  cpuTime?: number | string;
  /** CPU bandwidth in cores (0.5 = half a core). */
  cpuCores?: number;
  /** Processes and threads in the tree. */
  pids?: number;
  /** Open files (RLIMIT_NOFILE). */
  nofile?: number;
}

/** When and how the daemon restarts the process. */
export interface RestartPolicy {
  mode: RestartMode;
  /** Delay before the first restart (default 1000), doubling up to maxBackoffMs (default 30000). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** 0: no limit. */
  maxRestarts?: number;
}

/** What to start. */
export interface StartOptions extends CallOptions {
  cmd: string;
  args?: string[];
  envs?: Record<string, string>;
  cwd?: string;
  /** A name to find the process by later (attach, signal, list). */
  tag?: string;
  /** Keep a stdin pipe open (default true); false gives /dev/null. */
  stdin?: boolean;
  /** Run in a pseudo-terminal of this size. */
  pty?: { cols: number; rows: number };
  /** Capture (default) or discard each stream, or merge stderr into stdout. */
  output?: { stdout?: boolean; stderr?: boolean; mergeStderr?: boolean };
  restart?: RestartMode | RestartPolicy;
  /** Kill the tree after this long (ms or "30s"), counted across restarts; 0: never. */
  timeout?: number | string;
  limits?: Limits;
  /** Run as another user or groups than the client's user. */
  runAs?: { user?: string; group?: string; supplementaryGroups?: string[]; clearSupplementaryGroups?: boolean };
  /** Hardening: no_new_privs, capabilities, seccomp, masked and read-only paths, user namespace. */
  security?: MessageInitShape<typeof ProcessSecuritySchema>;
}

/** Where an attach's replay begins: "oldest" held byte, an output offset, or live only (undefined). */
export type ReplayFrom = "oldest" | number | undefined;

/** A signal by name ("SIGTERM", "term", "USR1") or number, sent to the process, its group or its tree. */
export interface SignalOptions extends CallOptions {
  target?: "process" | "group" | "tree";
  /** Cancel the restart policy too, so the process stays down. */
  stopRestarts?: boolean;
}

export function processRef(sel: ProcessSelector): MessageInitShape<typeof ProcessRefSchema> {
  if (typeof sel === "string") return { selector: { case: "tag", value: sel } };
  if ("tag" in sel) return { selector: { case: "tag", value: sel.tag } };
  if ("id" in sel) return { selector: { case: "id", value: BigInt(sel.id) } };
  if ("pid" in sel) return { selector: { case: "pid", value: sel.pid } };
  throw new TypeError("a process is selected by tag, id or pid");
}

function startRequest(o: StartOptions): MessageInitShape<typeof StartProcessRequestSchema> {
  const restart = typeof o.restart === "string" ? { mode: o.restart } : o.restart;
  const l = o.limits;
  return {
    process: { cmd: o.cmd, args: o.args ?? [], envs: o.envs ?? {}, cwd: o.cwd },
    pty: o.pty ? { size: { cols: o.pty.cols, rows: o.pty.rows } } : undefined,
    tag: o.tag,
    stdin: o.stdin,
    output: o.output ? { captureStdout: o.output.stdout, captureStderr: o.output.stderr, mergeStderr: o.output.mergeStderr ?? false } : undefined,
    restart: restart ? { mode: restartMode(restart.mode), backoffMs: restart.backoffMs ?? 0, maxBackoffMs: restart.maxBackoffMs ?? 0, maxRestarts: restart.maxRestarts ?? 0 } : undefined,
    timeoutMs: o.timeout === undefined ? 0 : parseDurationMs(o.timeout),
    limits: l
      ? {
          memoryMaxBytes: l.memory === undefined ? undefined : BigInt(parseBytes(l.memory)),
          cpuTimeMs: l.cpuTime === undefined ? undefined : BigInt(parseDurationMs(l.cpuTime)),
          cpuCores: l.cpuCores,
          pidsMax: l.pids,
          nofile: l.nofile === undefined ? undefined : BigInt(l.nofile),
        }
      : undefined,
    runAs: o.runAs,
    security: o.security,
  };
}

/** Events without keepalives, errors as EnvdError. */
async function* events(source: AsyncIterable<Parameters<typeof toEvent>[0]>): AsyncGenerator<ProcessEvent> {
  for await (const raw of iterate(source)) {
    const ev = toEvent(raw);
    if (ev) yield ev;
  }
}

/** Opens a stream and waits for its first event, so a refused call throws here. */
async function open(source: AsyncIterable<Parameters<typeof toEvent>[0]>): Promise<ProcessStream> {
  const it = events(source);
  const first = await it.next();
  if (first.done) throw new EnvdError(Code.Unavailable, "the stream ended before its first event");
  return new ProcessStream(first.value, it);
}

/** envdts.v1.ProcessControl: start with limits and restarts, attach with replay, history, any signal. */
export class ProcessesApi {
  constructor(
    private readonly rpc: Client<typeof ProcessControl>,
    private readonly e2b: Client<typeof Process>,
  ) {}

  /** Starts a process; resolves once it runs (a refused start, e.g. an unenforceable limit, rejects). */
  async start(options: StartOptions): Promise<ProcessStream> {
    let req;
    try {
      req = startRequest(options);
    } catch (err) {
      throw new EnvdError(Code.InvalidArgument, (err as Error).message, { cause: err });
    }
    return open(this.rpc.start(req, { signal: options.signal, timeoutMs: options.timeoutMs }));
  }

  /** Starts a process and waits for its final exit: output and outcome. */
  async run(options: StartOptions) {
    return (await this.start({ ...options, stdin: options.stdin ?? false })).wait();
  }

  /**
   * Attaches to a running or finished process: replays held output from `from` ("oldest" or an
   * offset), then follows it live until its final exit.
   */
  async attach(process: ProcessSelector, options: CallOptions & { from?: ReplayFrom } = {}): Promise<ProcessStream> {
    const from = options.from === "oldest" ? { case: "oldest" as const, value: true } : typeof options.from === "number" ? { case: "offset" as const, value: BigInt(options.from) } : undefined;
    return open(this.rpc.attach({ process: processRef(process), from }, { signal: options.signal, timeoutMs: options.timeoutMs }));
  }

  /** Describes one running or finished process. */
  async get(process: ProcessSelector, options: CallOptions = {}): Promise<ProcessInfo> {
    const res = await call(this.rpc.getProcess({ process: processRef(process) }, options));
    return toInfo(res.process!);
  }

  /** Running processes (oldest start first), then finished ones (latest finish first). */
  async list(options: CallOptions & { filter?: "all" | "running" | "finished"; tag?: string } = {}): Promise<ProcessInfo[]> {
    const filter = { all: ListProcessesRequest_Filter.ALL, running: ListProcessesRequest_Filter.RUNNING, finished: ListProcessesRequest_Filter.FINISHED }[options.filter ?? "all"];
    const res = await call(this.rpc.listProcesses({ filter, tag: options.tag }, options));
    return res.processes.map(toInfo);
  }

  /** Sends any signal, by name or number. */
  async signal(process: ProcessSelector, signal: string | number, options: SignalOptions = {}): Promise<void> {
    const target = { process: SignalRequest_Target.PROCESS, group: SignalRequest_Target.GROUP, tree: SignalRequest_Target.TREE }[options.target ?? "process"];
    const sig = typeof signal === "number" ? { case: "number" as const, value: signal } : { case: "name" as const, value: signal };
    await call(this.rpc.signal({ process: processRef(process), signal: sig, target, stopRestarts: options.stopRestarts ?? false }, options));
  }

  /** Writes to the process's stdin (or its terminal); through E2B's process.Process, which sees these processes too. */
  async sendInput(process: ProcessSelector, data: Uint8Array | string, options: CallOptions & { pty?: boolean } = {}): Promise<void> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const sel = await this.e2bSelector(process, options);
    await call(this.e2b.sendInput({ process: sel, input: { input: { case: options.pty ? "pty" : "stdin", value: bytes } } }, options));
  }

  /** Closes the process's stdin (EOF). */
  async closeStdin(process: ProcessSelector, options: CallOptions = {}): Promise<void> {
    await call(this.e2b.closeStdin({ process: await this.e2bSelector(process, options) }, options));
  }

  /** process.Process selects by pid or tag only: an id is looked up first. */
  private async e2bSelector(process: ProcessSelector, options: CallOptions) {
    if (typeof process === "string") return { selector: { case: "tag" as const, value: process } };
    if ("tag" in process) return { selector: { case: "tag" as const, value: process.tag } };
    if ("pid" in process) return { selector: { case: "pid" as const, value: process.pid } };
    return { selector: { case: "pid" as const, value: (await this.get(process, options)).pid } };
  }
}
