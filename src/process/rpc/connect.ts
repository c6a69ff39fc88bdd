import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { ConnectRequest, ConnectResponse, ConnectResponseSchema } from "../../gen/process_pb.js";
import type { RpcDeps } from "./deps.js";
import { E2B_KEEPALIVE, e2bEnd, e2bEvent, type E2bEventInit } from "./e2b-events.js";
import { pumpEvents } from "./pump.js";
import { fromE2bSelector, notFound } from "./selectors.js";

type Out = MessageInitShape<typeof ConnectResponseSchema>;
const wrap = (e: E2bEventInit): Out => ({ event: { event: e } as ConnectResponse["event"] });

/**
 * process.Process/Connect: start{pid} at once, then live output (no replay,
 * as in E2B), then the end. A process that exited in the last 30 s gets its
 * start and retained end.
 */
export function connect(deps: RpcDeps) {
  return async function* (req: ConnectRequest, hctx: HandlerContext): AsyncGenerator<Out> {
    const sel = fromE2bSelector(req.process);
    const proc = deps.registry.findLive(sel);
    if (!proc) {
      const retained = deps.registry.findRetained(sel);
      if (!retained) throw notFound(sel);
      yield wrap({ case: "start", value: { pid: retained.pid } });
      yield wrap(e2bEnd(retained.exit));
      return;
    }
    const { sub } = proc.subscribe(true);
    yield* pumpEvents<Out>({
      sub,
      first: [wrap({ case: "start", value: { pid: proc.pid } })],
      map: (ev) => (ev.kind === "started" ? undefined : wrap(e2bEvent(ev))),
      ping: () => wrap(E2B_KEEPALIVE),
      hctx,
      ctx: deps.ctx,
    });
  };
}
