import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { RestartPolicy_Mode, type ProcessStreamEventSchema, type RestartPolicy, type StartProcessRequest } from "../../gen/envdts/v1/process_ext_pb.js";
import type { RestartSpec } from "../process-spec.js";
import type { RpcDeps } from "./deps.js";
import { extEvent, extKeepalive } from "./ext-events.js";
import { pumpEvents } from "./pump.js";
import { buildSpec } from "./spec.js";

type Out = MessageInitShape<typeof ProcessStreamEventSchema>;

/** envdts.v1.RestartPolicy → RestartSpec. */
export function restartSpec(p: RestartPolicy | undefined): RestartSpec {
  const mode = p?.mode === RestartPolicy_Mode.ALWAYS ? "always" : p?.mode === RestartPolicy_Mode.ON_FAILURE ? "on_failure" : "never";
  return { mode, backoffMs: p?.backoffMs ?? 0, maxBackoffMs: p?.maxBackoffMs ?? 0, maxRestarts: p?.maxRestarts ?? 0 };
}

/**
 * envdts.v1.ProcessControl/Start: like process.Process/Start plus output
 * selection, a restart policy and its own process timeout. The stream's
 * deadline does not kill the process.
 */
export function extStart(deps: RpcDeps) {
  return async function* (req: StartProcessRequest, hctx: HandlerContext): AsyncGenerator<Out> {
    const spec = buildSpec(deps, hctx, {
      config: req.process,
      pty: req.pty,
      tag: req.tag,
      stdin: req.stdin,
      captureStdout: req.output?.captureStdout,
      captureStderr: req.output?.captureStderr,
      mergeStderr: req.output?.mergeStderr,
      restart: restartSpec(req.restart),
      timeoutMs: req.timeoutMs,
      timeoutSlackMs: 0,
    });
    const proc = deps.registry.create(spec);
    const { sub } = proc.subscribe(false);
    try {
      await proc.launch();
    } catch (err) {
      sub.close();
      throw err;
    }
    yield* pumpEvents<Out>({ sub, firstFromSubscription: true, map: (ev) => extEvent(proc.id, ev), ping: extKeepalive, hctx, ctx: deps.ctx });
  };
}
