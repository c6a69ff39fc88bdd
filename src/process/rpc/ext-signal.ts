import { Code, ConnectError } from "@connectrpc/connect";
import { SignalRequest_Target, type SignalRequest } from "../../gen/envdts/v1/process_ext_pb.js";
import { signalFromName, signalFromNumber } from "../signals.js";
import type { RpcDeps } from "./deps.js";
import { fromProcessRef, notFound } from "./selectors.js";

/**
 * envdts.v1.ProcessControl/Signal: any signal, by number or name, to the
 * process, its group or its whole tree. With stop_restarts the restart policy
 * is cancelled (also when the process is waiting to restart).
 */
export function extSignal(deps: RpcDeps) {
  return (req: SignalRequest) => {
    const sel = fromProcessRef(req.process);
    const proc = deps.registry.find(sel);
    if (!proc) throw notFound(sel);
    let sig: number | undefined;
    if (req.signal.case === "number") sig = signalFromNumber(req.signal.value);
    else if (req.signal.case === "name") sig = signalFromName(req.signal.value);
    else throw new ConnectError("signal is missing: give a number or a name", Code.InvalidArgument);
    if (sig === undefined) throw new ConnectError(`unknown signal: ${req.signal.value}`, Code.InvalidArgument);
    if (proc.isFinished) throw new ConnectError(`process ${proc.id} (pid ${proc.pid}) has finished`, Code.FailedPrecondition);
    const target = req.target === SignalRequest_Target.GROUP ? "group" : req.target === SignalRequest_Target.TREE ? "tree" : "process";
    proc.signal(sig, target, { stopRestarts: req.stopRestarts });
    return {};
  };
}
