import { Code, ConnectError } from "@connectrpc/connect";
import type { UpdateRequest } from "../../gen/process_pb.js";
import type { RpcDeps } from "./deps.js";
import { liveProcess } from "./selectors.js";

/** process.Process/Update: resizes a PTY (TIOCSWINSZ, so the child gets SIGWINCH). */
export function update(deps: RpcDeps) {
  return (req: UpdateRequest) => {
    const proc = liveProcess(deps.registry, req.process);
    if (!req.pty) return {};
    if (!proc.isPty || !proc.child) throw new ConnectError("error resizing tty: tty not assigned to process", Code.Internal);
    const size = req.pty.size;
    try {
      proc.resize(size?.cols ?? 0, size?.rows ?? 0);
    } catch (err) {
      throw new ConnectError(`error resizing tty: ${(err as Error).message}`, Code.Internal);
    }
    return {};
  };
}
