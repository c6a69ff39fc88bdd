import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ListResponseSchema, ProcessConfig } from "../../gen/process_pb.js";
import type { RpcDeps } from "./deps.js";

/** process.Process/List: every process with a live run, with its config exactly as requested. */
export function list(deps: RpcDeps) {
  return (): MessageInitShape<typeof ListResponseSchema> => ({
    processes: deps.registry.liveProcesses().map(({ pid, proc }) => ({ pid, tag: proc.tag, config: proc.spec.config as ProcessConfig | undefined })),
  });
}
