import { ListProcessesRequest_Filter, type ListProcessesRequest, type ProcessInfo } from "../../gen/envdts/v1/process_ext_pb.js";
import type { RpcDeps } from "./deps.js";
import { extInfo } from "./ext-info.js";

/** envdts.v1.ProcessControl/ListProcesses: unfinished processes (oldest first), then finished ones (latest first). */
export function extListProcesses(deps: RpcDeps) {
  return (req: ListProcessesRequest) => {
    const running = req.filter !== ListProcessesRequest_Filter.FINISHED ? deps.registry.activeProcesses() : [];
    const finished = req.filter !== ListProcessesRequest_Filter.RUNNING ? deps.registry.finishedProcesses() : [];
    const all = [...running, ...finished].filter((p) => req.tag === undefined || p.tag === req.tag);
    return { processes: all.map((p) => extInfo(p) as ProcessInfo) };
  };
}
