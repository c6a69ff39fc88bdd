// Shared helpers for the limits and isolation tests (not a test file itself):
// start extension processes over gRPC and read what a user sees.
import { readFileSync } from "node:fs";
import type * as grpc from "@grpc/grpc-js";
import type { Daemon } from "./helpers/daemon.js";
import { collect, grpcClients, outputOf, unary, userMetadata } from "./process-helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** The result of one ProcessControl/Start stream that ended normally. */
export interface ExtRun {
  events: Any[];
  out: string;
  /** The final Exited event's ProcessExit. */
  exit: Any;
  pid: number;
  id: number;
}

/** ProcessControl/Start as `user`, collected to the end. Rejects with the gRPC error (code, details). */
export async function runExt(g: ReturnType<typeof grpcClients>, req: Any, user = "root", onMessage?: (m: Any) => void): Promise<ExtRun> {
  const events = await collect(g.ext.Start(req, userMetadata(user)), onMessage);
  const started = events.find((e: Any) => e.started)?.started;
  const exited = events.filter((e: Any) => e.exited).at(-1)?.exited;
  return { events, out: outputOf(events), exit: exited?.exit, pid: started?.pid ?? 0, id: Number(started?.id ?? 0) };
}

/** The gRPC error of a Start that must fail before any event. */
export async function startError(g: ReturnType<typeof grpcClients>, req: Any, user = "root"): Promise<grpc.ServiceError> {
  try {
    await runExt(g, req, user);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("the start succeeded");
}

/** GetProcess by id. */
export async function getProcess(g: ReturnType<typeof grpcClients>, id: number): Promise<Any> {
  return (await unary(g.ext, "GetProcess", { process: { id } })).process;
}

/** GET /health status. */
export async function health(d: Daemon): Promise<number> {
  const res = await fetch(`${d.url}/health`, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

/** Whether this test process holds a capability (bit number) in its effective set. */
export function haveCapability(bit: number): boolean {
  const line = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0";
  return ((BigInt("0x" + line) >> BigInt(bit)) & 1n) === 1n;
}

/** CAP_SYS_RESOURCE: raising hard rlimits and lowering oom_score_adj need it. */
export const CAP_SYS_RESOURCE = 24;

/** Whether cgroup v1 memory, pids, cpu and cpuacct hierarchies are mounted (the CI machine has them). */
export function haveV1Controllers(): boolean {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8");
  return ["memory", "pids", "cpu", "cpuacct"].every((c) => new RegExp(` - cgroup \\S+ \\S*\\b${c}\\b`).test(mounts));
}

/** Whether a cgroup2 filesystem is mounted at this exact path. */
export function haveCgroup2At(path: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((l) => l.split(" ")[4] === path && l.includes(" - cgroup2 "));
}
