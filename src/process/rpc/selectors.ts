import { Code, ConnectError } from "@connectrpc/connect";
import type { ProcessSelector } from "../../gen/process_pb.js";
import type { ProcessRef } from "../../gen/envdts/v1/process_ext_pb.js";
import type { ManagedProcess } from "../managed-process.js";
import type { ProcessRegistry, Selector } from "../registry.js";

/** process.ProcessSelector → Selector; E2B answers a missing one with unimplemented. */
export function fromE2bSelector(sel: ProcessSelector | undefined): Selector {
  switch (sel?.selector.case) {
    case "pid":
      return { pid: sel.selector.value };
    case "tag":
      return { tag: sel.selector.value };
    default:
      throw new ConnectError("invalid input type *process.ProcessSelector", Code.Unimplemented);
  }
}

/** envdts.v1.ProcessRef → Selector. */
export function fromProcessRef(ref: ProcessRef | undefined): Selector {
  switch (ref?.selector.case) {
    case "pid":
      return { pid: ref.selector.value };
    case "tag":
      return { tag: ref.selector.value };
    case "id":
      return { id: Number(ref.selector.value) };
    default:
      throw new ConnectError("process selector is missing: give a pid, tag or id", Code.InvalidArgument);
  }
}

/** E2B's not_found text for a selector. */
export function notFound(sel: Selector): ConnectError {
  if ("pid" in sel) return new ConnectError(`process with pid ${sel.pid} not found`, Code.NotFound);
  if ("tag" in sel) return new ConnectError(`process with tag ${sel.tag} not found`, Code.NotFound);
  return new ConnectError(`process with id ${sel.id} not found`, Code.NotFound);
}

/** The process with a live run, as E2B's RPCs look it up. */
export function liveProcess(registry: ProcessRegistry, sel: ProcessSelector | undefined): ManagedProcess {
  const s = fromE2bSelector(sel);
  const proc = registry.findLive(s);
  if (!proc) throw notFound(s);
  return proc;
}
