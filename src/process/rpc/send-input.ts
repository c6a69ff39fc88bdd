import type { SendInputRequest } from "../../gen/process_pb.js";
import type { RpcDeps } from "./deps.js";
import { handleInput } from "./input.js";
import { liveProcess } from "./selectors.js";

/** process.Process/SendInput: bytes to stdin or to the PTY; returns once written to the kernel. */
export function sendInput(deps: RpcDeps) {
  return async (req: SendInputRequest) => {
    await handleInput(liveProcess(deps.registry, req.process), req.input);
    return {};
  };
}
