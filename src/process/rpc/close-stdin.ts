import { Code, ConnectError } from "@connectrpc/connect";
import type { CloseStdinRequest } from "../../gen/process_pb.js";
import type { RpcDeps } from "./deps.js";
import { liveProcess } from "./selectors.js";

/** process.Process/CloseStdin: EOF to the child; idempotent; refused for PTYs (E2B's unknown code). */
export function closeStdin(deps: RpcDeps) {
  return async (req: CloseStdinRequest) => {
    const proc = liveProcess(deps.registry, req.process);
    if (proc.isPty) throw new ConnectError("error closing stdin: cannot close stdin for PTY process — send Ctrl+D (0x04) instead", Code.Unknown);
    try {
      await proc.child?.closeStdin();
    } catch (err) {
      throw new ConnectError(`error closing stdin: ${(err as Error).message}`, Code.Unknown);
    }
    return {};
  };
}
