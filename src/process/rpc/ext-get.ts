import type { GetProcessRequest, ProcessInfo } from "../../gen/envdts/v1/process_ext_pb.js";
import type { RpcDeps } from "./deps.js";
import { extInfo } from "./ext-info.js";
import { fromProcessRef, notFound } from "./selectors.js";

/** envdts.v1.ProcessControl/GetProcess: a running process, else the latest finished match in the history. */
export function extGetProcess(deps: RpcDeps) {
  return (req: GetProcessRequest) => {
    const sel = fromProcessRef(req.process);
    const proc = deps.registry.find(sel);
    if (!proc) throw notFound(sel);
    return { process: extInfo(proc) as ProcessInfo };
  };
}
