import type { ProcessEvent_EndEvent } from "../../gen/process_pb.js";
import type { ProcEvent } from "../events.js";
import type { ExitInfo } from "../exit-status.js";

/** The `event` oneof of process.ProcessEvent, as an init shape. */
export type E2bEventInit =
  | { case: "start"; value: { pid: number } }
  | { case: "data"; value: { output: { case: "stdout" | "stderr" | "pty"; value: Uint8Array } } }
  | { case: "end"; value: Partial<ProcessEvent_EndEvent> }
  | { case: "keepalive"; value: object };

/**
 * E2B's EndEvent: exitCode -1 and exited false when a signal ended the
 * process; `error` is the status text for anything but a clean exit 0, and
 * absent otherwise.
 */
export function e2bEnd(exit: ExitInfo): E2bEventInit {
  const clean = exit.exited && exit.exitCode === 0;
  return { case: "end", value: { exitCode: exit.exitCode, exited: exit.exited, status: exit.status, error: clean ? undefined : exit.status || exit.error } };
}

/** A process event as process.ProcessEvent's oneof. */
export function e2bEvent(ev: ProcEvent): E2bEventInit {
  switch (ev.kind) {
    case "started":
      return { case: "start", value: { pid: ev.pid } };
    case "data":
      return { case: "data", value: { output: { case: ev.chunk.stream, value: ev.chunk.data } } };
    case "exited":
      return e2bEnd(ev.exit);
  }
}

/** The keepalive event. */
export const E2B_KEEPALIVE: E2bEventInit = { case: "keepalive", value: {} };
