import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  RestartPolicy_Mode,
  type ProcessLimits,
  type ProcessSecurity,
  type ProcessStreamEventSchema,
  type RestartPolicy,
  type RunAs,
  type StartProcessRequest,
} from "../../gen/envdts/v1/process_ext_pb.js";
import type { RequestedExecution } from "../../isolation/execution.js";
import type { ResourceLimits } from "../../limits/limits.js";
import type { RestartSpec } from "../process-spec.js";
import type { RpcDeps } from "./deps.js";
import { extEvent, extKeepalive } from "./ext-events.js";
import { pumpEvents } from "./pump.js";
import { buildSpec, type RunAsInput } from "./spec.js";

type Out = MessageInitShape<typeof ProcessStreamEventSchema>;

/** envdts.v1.RestartPolicy → RestartSpec. */
export function restartSpec(p: RestartPolicy | undefined): RestartSpec {
  const mode = p?.mode === RestartPolicy_Mode.ALWAYS ? "always" : p?.mode === RestartPolicy_Mode.ON_FAILURE ? "on_failure" : "never";
  return { mode, backoffMs: p?.backoffMs ?? 0, maxBackoffMs: p?.maxBackoffMs ?? 0, maxRestarts: p?.maxRestarts ?? 0 };
}

/** envdts.v1.ProcessLimits → ResourceLimits (unset stays unset; 0 means "no limit"). */
export function limitsInput(l: ProcessLimits | undefined): ResourceLimits | undefined {
  if (!l) return undefined;
  const n = (v: bigint | number | undefined) => (v === undefined ? undefined : Number(v));
  return { memoryMaxBytes: n(l.memoryMaxBytes), cpuTimeMs: n(l.cpuTimeMs), cpuCores: l.cpuCores, pidsMax: l.pidsMax, nofile: n(l.nofile) };
}

/** envdts.v1.ProcessSecurity → the policy's request shape. */
export function securityInput(s: ProcessSecurity | undefined): RequestedExecution["security"] {
  if (!s) return undefined;
  return {
    noNewPrivs: s.noNewPrivs,
    dropCapabilities: s.dropCapabilities,
    addCapabilities: s.addCapabilities,
    seccompProfile: s.seccomp?.profile,
    seccompDeny: s.seccomp?.deny,
    seccompAllow: s.seccomp?.allow,
    seccompAllowOnly: s.seccomp?.allowOnly,
    maskedPaths: s.maskedPaths,
    readonlyPaths: s.readonlyPaths,
    userNamespace: s.userNamespace,
  };
}

/** envdts.v1.RunAs → RunAsInput; undefined when it names nothing. */
export function runAsInput(r: RunAs | undefined): RunAsInput | undefined {
  if (!r || (r.user === undefined && r.group === undefined && r.supplementaryGroups.length === 0 && !r.clearSupplementaryGroups)) return undefined;
  return { user: r.user, group: r.group, supplementaryGroups: r.supplementaryGroups, clearSupplementaryGroups: r.clearSupplementaryGroups };
}

/**
 * envdts.v1.ProcessControl/Start: like process.Process/Start plus output
 * selection, a restart policy and its own process timeout. The stream's
 * deadline does not kill the process.
 */
export function extStart(deps: RpcDeps) {
  return async function* (req: StartProcessRequest, hctx: HandlerContext): AsyncGenerator<Out> {
    // E2B's Start runs an empty command through its shell wrapper and reports exit 127, which
    // process.Process/Start keeps; here it is the caller's mistake, said before anything runs.
    if (!req.process?.cmd) throw new ConnectError("process.cmd is empty: name the program to run", Code.InvalidArgument);
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
      runAs: runAsInput(req.runAs),
      execution: { limits: limitsInput(req.limits), security: securityInput(req.security) },
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
