import { Code } from "@connectrpc/connect";
import { EnvdError } from "./errors.js";
import type { ProcessEvent, ProcessExit, ProcessInfo, StreamName } from "./process-types.js";

/** What a process stream collected by the time its process finished for good. */
export interface ProcessResult {
  /** How the final run ended. */
  exit: ProcessExit;
  /** Every run's end, restarts included, in order. */
  exits: ProcessExit[];
  /** Output decoded as UTF-8, per stream (all runs). */
  stdout: string;
  stderr: string;
  pty: string;
  /** Every output byte received, all streams in offset order. */
  output: Uint8Array;
}

/**
 * The events of one Start or Attach stream, as an async iterator. The first event (started, or
 * attached) has already arrived when you get one, so `pid`, `id` and (for attach) `info` are set.
 * Iterate it, or call wait(); not both at once. Aborting the call's signal ends it with an
 * EnvdError "canceled".
 */
export class ProcessStream implements AsyncIterable<ProcessEvent> {
  /** The daemon-assigned id (stable across restarts). */
  readonly id: number;
  /** The pid of the run the stream began with. */
  readonly pid: number;
  /** Attach only: the process when attached. */
  readonly info?: ProcessInfo;
  /** Attach only: the offset of the first byte that follows, and bytes lost before it. */
  readonly offset?: number;
  readonly droppedBytes?: number;
  private readonly first: ProcessEvent;
  private readonly rest: AsyncIterator<ProcessEvent>;
  private taken = false;

  /** @internal Made by ProcessesApi.start and .attach. */
  constructor(first: ProcessEvent, rest: AsyncIterator<ProcessEvent>) {
    this.first = first;
    this.rest = rest;
    if (first.type === "attached") {
      this.id = first.process.id;
      this.pid = first.process.pid;
      this.info = first.process;
      this.offset = first.offset;
      this.droppedBytes = first.droppedBytes;
    } else if (first.type === "started") {
      this.id = first.id;
      this.pid = first.pid;
    } else {
      throw new EnvdError(Code.Internal, `the stream began with a ${first.type} event`);
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ProcessEvent> {
    if (!this.taken) {
      this.taken = true;
      yield this.first;
    }
    for (;;) {
      const r = await this.rest.next();
      if (r.done) return;
      yield r.value;
    }
  }

  /**
   * Reads to the end of the stream and returns the final exit and the output. `onOutput` sees
   * each chunk as it arrives (to print while collecting). A stream that ends without a final
   * exit (the process is still running: the daemon went away) throws "unavailable".
   */
  async wait(onOutput?: (stream: StreamName, data: Uint8Array) => void): Promise<ProcessResult> {
    const chunks: Record<StreamName, Uint8Array[]> = { stdout: [], stderr: [], pty: [] };
    const all: Uint8Array[] = [];
    const exits: ProcessExit[] = [];
    for await (const ev of this) {
      if (ev.type === "output") {
        chunks[ev.stream].push(ev.data);
        all.push(ev.data);
        onOutput?.(ev.stream, ev.data);
      } else if (ev.type === "exited") {
        exits.push(ev.exit);
        if (ev.final) {
          const text = (s: StreamName) => Buffer.concat(chunks[s]).toString("utf8");
          return { exit: ev.exit, exits, stdout: text("stdout"), stderr: text("stderr"), pty: text("pty"), output: Buffer.concat(all) };
        }
      } else if (ev.type === "attached" && ev.process.exit && ev.process.state !== "running" && ev.process.state !== "starting") {
        // Attached to a finished process: its held output follows, then the stream ends.
        exits.push(ev.process.exit);
      }
    }
    const last = exits.at(-1);
    if (this.info && last && this.info.state !== "running" && this.info.state !== "starting") {
      const text = (s: StreamName) => Buffer.concat(chunks[s]).toString("utf8");
      return { exit: last, exits, stdout: text("stdout"), stderr: text("stderr"), pty: text("pty"), output: Buffer.concat(all) };
    }
    throw new EnvdError(Code.Unavailable, "the stream ended before the process's final exit");
  }
}
