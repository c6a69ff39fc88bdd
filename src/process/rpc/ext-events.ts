import type { MessageInitShape } from "@bufbuild/protobuf";
import { OutputStream, type ProcessExit, type ProcessStreamEventSchema } from "../../gen/envdts/v1/process_ext_pb.js";
import type { ProcEvent } from "../events.js";
import type { StreamKind } from "../output-ring.js";
import { extExit } from "./ext-info.js";

type ExtEventInit = MessageInitShape<typeof ProcessStreamEventSchema>;

const STREAMS: Record<StreamKind, OutputStream> = { stdout: OutputStream.STDOUT, stderr: OutputStream.STDERR, pty: OutputStream.PTY };

/** A process event as envdts.v1.ProcessStreamEvent; `id` is the process's id. */
export function extEvent(id: number, ev: ProcEvent): ExtEventInit {
  switch (ev.kind) {
    case "started":
      return { event: { case: "started", value: { id: BigInt(id), pid: ev.pid, restartCount: ev.restartCount } } };
    case "data":
      return {
        event: {
          case: "output",
          value: { stream: STREAMS[ev.chunk.stream], data: ev.chunk.data, offset: BigInt(ev.chunk.offset), streamOffset: BigInt(ev.chunk.streamOffset) },
        },
      };
    case "exited":
      return { event: { case: "exited", value: { pid: ev.pid, exit: extExit(ev.exit) as ProcessExit, final: ev.final, restartDelayMs: ev.restartDelayMs } } };
  }
}

/** The extension's keepalive event. */
export function extKeepalive(): ExtEventInit {
  return { event: { case: "keepalive", value: {} } };
}
