import type { ConnectRouter } from "@connectrpc/connect";
import { Process } from "../gen/process_pb.js";
import { closeStdin } from "./rpc/close-stdin.js";
import { connect } from "./rpc/connect.js";
import type { RpcDeps } from "./rpc/deps.js";
import { list } from "./rpc/list.js";
import { sendInput } from "./rpc/send-input.js";
import { sendSignal } from "./rpc/send-signal.js";
import { start } from "./rpc/start.js";
import { streamInput } from "./rpc/stream-input.js";
import { update } from "./rpc/update.js";

/** Registers process.Process (E2B-exact). */
export function registerProcessService(router: ConnectRouter, deps: RpcDeps): void {
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
}
