import { Code, ConnectError } from "@connectrpc/connect";
import { Signal, type SendSignalRequest } from "../../gen/process_pb.js";
import { SIGKILL, SIGTERM } from "../signals.js";
import type { RpcDeps } from "./deps.js";
import { liveProcess } from "./selectors.js";

/** How long SendSignal(SIGKILL) waits for the leader to be reaped, so `kill -0 <pid>` fails right after. */
const REAP_WAIT_MS = 2000;

/**
 * process.Process/SendSignal: SIGKILL or SIGTERM only (others: unimplemented,
 * as in E2B). Unlike E2B, the whole tree is signalled (its session, group and
 * descendants), and the process's restart policy, if any, is cancelled.
 */
export function sendSignal(deps: RpcDeps) {
  return async (req: SendSignalRequest) => {
    const proc = liveProcess(deps.registry, req.process);
    let sig: number;
    if (req.signal === Signal.SIGKILL) sig = SIGKILL;
    else if (req.signal === Signal.SIGTERM) sig = SIGTERM;
    else throw new ConnectError(`invalid signal: ${Signal[req.signal] !== undefined ? `SIGNAL_${Signal[req.signal]}` : req.signal}`, Code.Unimplemented);
    proc.signal(sig, "tree", { stopRestarts: true });
    if (sig === SIGKILL) await proc.waitLeaderExit(REAP_WAIT_MS);
    return {};
  };
}
