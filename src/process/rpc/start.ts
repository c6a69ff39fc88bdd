import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { StartRequest, StartResponse, StartResponseSchema } from "../../gen/process_pb.js";
import type { RpcDeps } from "./deps.js";
import { E2B_KEEPALIVE, e2bEvent } from "./e2b-events.js";
import { pumpEvents } from "./pump.js";
import { buildSpec } from "./spec.js";

/** E2B's stream deadline must fire before the process is killed, so the SDK sees deadline_exceeded. */
const E2B_KILL_SLACK_MS = 20;

/**
 * process.Process/Start: spawns, then streams start, data and exactly one end.
 * Connect-Timeout-Ms both bounds the stream and kills the process tree.
 */
export function start(deps: RpcDeps) {
  return async function* (req: StartRequest, hctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof StartResponseSchema>> {
    const timeout = hctx.timeoutMs();
    const spec = buildSpec(deps, hctx, {
      config: req.process,
      pty: req.pty,
      tag: req.tag,
      stdin: req.stdin,
      timeoutMs: timeout !== undefined && timeout > 0 ? timeout : 0,
      timeoutSlackMs: E2B_KILL_SLACK_MS,
    });
    const proc = deps.registry.create(spec);
    // Subscribed before the spawn, so nothing the command prints is missed.
    const { sub } = proc.subscribe(true);
    try {
      await proc.launch();
    } catch (err) {
      sub.close();
      throw err;
    }
    yield* pumpEvents<MessageInitShape<typeof StartResponseSchema>>({
      sub,
      firstFromSubscription: true,
      map: (ev) => ({ event: { event: e2bEvent(ev) } as StartResponse["event"] }),
      ping: () => ({ event: { event: E2B_KEEPALIVE } as StartResponse["event"] }),
      hctx,
      ctx: deps.ctx,
    });
  };
}
