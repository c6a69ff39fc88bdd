import type { ConnectRouter } from "@connectrpc/connect";
import { ProcessControl } from "../gen/envdts/v1/process_ext_pb.js";
import { Process } from "../gen/process_pb.js";
import { closeStdin } from "./rpc/close-stdin.js";
import { connect } from "./rpc/connect.js";
import type { RpcDeps } from "./rpc/deps.js";
import { extAttach } from "./rpc/ext-attach.js";
import { extGetProcess } from "./rpc/ext-get.js";
import { extListProcesses } from "./rpc/ext-list.js";
import { extSignal } from "./rpc/ext-signal.js";
import { extStart } from "./rpc/ext-start.js";
import { list } from "./rpc/list.js";
import { sendInput } from "./rpc/send-input.js";
import { sendSignal } from "./rpc/send-signal.js";
import { start } from "./rpc/start.js";
import { streamInput } from "./rpc/stream-input.js";
import { update } from "./rpc/update.js";

/** Registers process.Process (E2B-exact) and envdts.v1.ProcessControl (the extension). */
export function registerProcessServices(router: ConnectRouter, deps: RpcDeps): void {
  router.service(Process, {
    list: list(deps),
    connect: connect(deps),
    start: start(deps),
    update: update(deps),
    streamInput: streamInput(deps),
    sendInput: sendInput(deps),
    sendSignal: sendSignal(deps),
    closeStdin: closeStdin(deps),
  });
  router.service(ProcessControl, {
    start: extStart(deps),
    attach: extAttach(deps),
    getProcess: extGetProcess(deps),
    listProcesses: extListProcesses(deps),
    signal: extSignal(deps),
  });
}
