import type { ConnectRouter } from "@connectrpc/connect";
import { ProcessControl } from "../gen/envdts/v1/process_ext_pb.js";
import type { RpcDeps } from "./rpc/deps.js";
import { extAttach } from "./rpc/ext-attach.js";
import { extGetProcess } from "./rpc/ext-get.js";
import { extListProcesses } from "./rpc/ext-list.js";
import { extSignal } from "./rpc/ext-signal.js";
import { extStart } from "./rpc/ext-start.js";

/** Registers envdts.v1.ProcessControl, the extension (loaded at its first request). */
export function registerProcessControlService(router: ConnectRouter, deps: RpcDeps): void {
  router.service(ProcessControl, {
    start: extStart(deps),
    attach: extAttach(deps),
    getProcess: extGetProcess(deps),
    listProcesses: extListProcesses(deps),
    signal: extSignal(deps),
  });
}
