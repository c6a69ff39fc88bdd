import { Code, ConnectError } from "@connectrpc/connect";
import type { ProcessInput } from "../../gen/process_pb.js";
import type { ManagedProcess } from "../managed-process.js";

/** Writes one ProcessInput to a process, with E2B's errors (docs/protocol.md, "Input and signals"). */
export async function handleInput(proc: ManagedProcess, input: ProcessInput | undefined): Promise<void> {
  const child = proc.child;
  switch (input?.input.case) {
    case "pty":
      if (!proc.isPty || !child) throw new ConnectError("error writing to tty: tty not assigned to process — input should be written to the stdin, not the tty", Code.Internal);
      try {
        child.writePty(Buffer.from(input.input.value.buffer, input.input.value.byteOffset, input.input.value.byteLength));
      } catch (err) {
        throw new ConnectError(`error writing to tty: error writing to tty of process '${proc.pid}': ${(err as Error).message}`, Code.Internal);
      }
      return;
    case "stdin":
      if (proc.isPty) throw new ConnectError("error writing to stdin: tty assigned to process — input should be written to the pty, not the stdin", Code.Internal);
      if (!child) throw new ConnectError("error writing to stdin: stdin not enabled or closed", Code.Internal);
      try {
        await child.writeStdin(Buffer.from(input.input.value.buffer, input.input.value.byteOffset, input.input.value.byteLength));
      } catch (err) {
        throw new ConnectError(`error writing to stdin: ${(err as Error).message}`, Code.Internal);
      }
      return;
    default:
      throw new ConnectError("invalid input type <nil>", Code.Unimplemented);
  }
}
