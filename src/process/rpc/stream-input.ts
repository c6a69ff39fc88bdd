import { Code, ConnectError } from "@connectrpc/connect";
import type { StreamInputRequest } from "../../gen/process_pb.js";
import type { ManagedProcess } from "../managed-process.js";
import type { RpcDeps } from "./deps.js";
import { handleInput } from "./input.js";
import { liveProcess } from "./selectors.js";

/**
 * process.Process/StreamInput: a client stream of start (selects the process),
 * data (written in order, each awaited, so the child's reading paces the
 * client) and keepalive messages.
 */
export function streamInput(deps: RpcDeps) {
  return async (reqs: AsyncIterable<StreamInputRequest>) => {
    let proc: ManagedProcess | undefined;
    const it = reqs[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<StreamInputRequest>;
      try {
        next = await it.next();
      } catch (err) {
        throw new ConnectError(`error streaming input: ${ConnectError.from(err).message}`, Code.Unknown);
      }
      if (next.done) break;
      const ev = next.value.event;
      switch (ev.case) {
        case "start":
          proc = liveProcess(deps.registry, ev.value.process);
          break;
        case "data":
          if (!proc) throw new ConnectError("error streaming input: data before start: send a start event selecting the process first", Code.FailedPrecondition);
          await handleInput(proc, ev.value.input);
          break;
        case "keepalive":
          break;
        default:
          throw new ConnectError("invalid event type <nil>", Code.Unimplemented);
      }
    }
    return {};
  };
}
