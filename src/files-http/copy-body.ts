import type { Readable, Writable } from "node:stream";
import { FileTooLargeError } from "./request-body.js";

/** Resolves at `sink`'s next `event`; rejects when it fails or closes first. */
function nextEvent(sink: Writable, event: "drain" | "finish", closedMessage: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (event === "finish" && sink.writableFinished) return resolve();
    if (sink.destroyed) return reject(sink.errored ?? new Error(closedMessage));
    const settle = (err?: Error | null) => {
      sink.off(event, onEvent);
      sink.off("error", onError);
      sink.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onEvent = () => settle();
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(event === "finish" && sink.writableFinished ? null : (sink.errored ?? new Error(closedMessage)));
    sink.on(event, onEvent);
    sink.on("error", onError);
    sink.on("close", onClose);
  });
}

/** Resolves when `sink` can take more data; rejects when it fails or closes first. */
export function drained(sink: Writable, closedMessage = "the stream was closed"): Promise<void> {
  return nextEvent(sink, "drain", closedMessage);
}

/**
 * Copies `body` into `sink` and ends it, failing with FileTooLargeError once more than
 * `maxBytes` went by (0: no limit). On any failure both streams are destroyed and the first
 * error is thrown. What stream.pipeline does for this chain, without what it costs per call:
 * an AbortController aborted at the end of every pipeline (whose DOMException alone was
 * ~20 µs) and a Transform for the limit (bench/NOTES.md, item 10).
 */
export async function copyBody(body: Readable, sink: Writable, maxBytes: number): Promise<number> {
  let sinkError: Error | undefined;
  // A write that fails between two chunks stops the body at once (the loop then throws this error).
  const onSinkError = (err: Error) => {
    sinkError ??= err;
    body.destroy();
  };
  sink.on("error", onSinkError);
  let bytes = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (sinkError) throw sinkError;
      bytes += chunk.length;
      if (maxBytes > 0 && bytes > maxBytes) throw new FileTooLargeError(maxBytes);
      if (!sink.write(chunk)) await drained(sink);
    }
    if (sinkError) throw sinkError;
    sink.end();
    await nextEvent(sink, "finish", "the stream was closed");
    return bytes;
  } catch (err) {
    const first = sinkError ?? err;
    body.destroy();
    sink.destroy();
    throw first;
  } finally {
    sink.off("error", onSinkError);
  }
}
