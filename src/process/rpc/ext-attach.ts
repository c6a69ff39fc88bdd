import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { AttachRequest, ProcessInfo, ProcessStreamEventSchema } from "../../gen/envdts/v1/process_ext_pb.js";
import type { RpcDeps } from "./deps.js";
import { extEvent, extKeepalive } from "./ext-events.js";
import { extInfo } from "./ext-info.js";
import { pumpEvents } from "./pump.js";
import { fromProcessRef, notFound } from "./selectors.js";

type Out = MessageInitShape<typeof ProcessStreamEventSchema>;

/**
 * envdts.v1.ProcessControl/Attach: `attached` (where replay starts and how
 * many bytes were dropped), the held output from there, then live events until
 * the final exit. Works on finished processes still in the history.
 */
export function extAttach(deps: RpcDeps) {
  return async function* (req: AttachRequest, hctx: HandlerContext): AsyncGenerator<Out> {
    const sel = fromProcessRef(req.process);
    const proc = deps.registry.find(sel);
    if (!proc) throw notFound(sel);
    const from = req.from.case === "offset" ? { offset: Number(req.from.value) } : req.from.case === "oldest" && req.from.value ? ({ oldest: true } as const) : undefined;
    const { sub, offset, dropped } = proc.subscribe(false, from);
    const attached: Out = { event: { case: "attached", value: { process: extInfo(proc) as ProcessInfo, offset: BigInt(offset), droppedBytes: BigInt(dropped) } } };
    yield* pumpEvents<Out>({ sub, first: [attached], map: (ev) => extEvent(proc.id, ev), ping: extKeepalive, hctx, ctx: deps.ctx });
  };
}
