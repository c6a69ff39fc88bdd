import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { timerDelay } from "../system/timer-delay.js";

/** Limits on a relayed connection; 0 disables each. */
export interface RelayOptions {
  /** Both sides idle this long: close both. */
  readTimeoutMs: number;
  /** Data queued for one side and not accepted for this long: close both. */
  writeTimeoutMs: number;
  /** Called once for the first socket error or timeout (for the error counter and the log). */
  onError(err: Error): void;
}

type Side = Duplex & Partial<Pick<Socket, "setTimeout" | "bytesWritten">>;

/**
 * Pipes two connected sockets into each other until both directions are done.
 * `pipe` gives backpressure (a slow reader pauses the other side) and forwards a half-close
 * (FIN) as `end()`, so each direction finishes on its own; an error or a timeout on either
 * side destroys both.
 */
export function relay(a: Side, b: Side, opts: RelayOptions): void {
  let failed = false;
  const fail = (err: Error) => {
    if (!failed) {
      failed = true;
      opts.onError(err);
    }
    a.destroy();
    b.destroy();
  };
  a.on("error", fail);
  b.on("error", fail);
  // A side that closes before its data ended (destroyed, reset) takes the other one down;
  // after a clean end the other side drains and closes by itself.
  a.on("close", () => {
    if (!b.writableEnded) b.destroy();
  });
  b.on("close", () => {
    if (!a.writableEnded) a.destroy();
  });
  if (opts.readTimeoutMs > 0) {
    const onIdle = () => fail(new Error(`connection idle for ${opts.readTimeoutMs} ms`));
    for (const s of [a, b]) {
      s.setTimeout?.(timerDelay(opts.readTimeoutMs));
      s.on("timeout", onIdle);
    }
  }
  if (opts.writeTimeoutMs > 0) watchStalledWrites([a, b], opts.writeTimeoutMs, fail);
  a.pipe(b);
  b.pipe(a);
}

/** Polls the write queues: queued bytes with no progress for `limitMs` mean a stuck peer. */
function watchStalledWrites(sides: Side[], limitMs: number, fail: (err: Error) => void): void {
  // bytesWritten counts queued bytes too, so progress is either more queued or less waiting.
  const last = sides.map((s) => ({ written: s.bytesWritten ?? 0, queued: s.writableLength, since: Date.now() }));
  const timer = setInterval(
    () => {
      const now = Date.now();
      sides.forEach((s, i) => {
        const mark = last[i]!;
        const written = s.bytesWritten ?? 0;
        if (s.writableLength === 0 || written !== mark.written || s.writableLength !== mark.queued) {
          mark.written = written;
          mark.queued = s.writableLength;
          mark.since = now;
        } else if (now - mark.since >= limitMs) {
          fail(new Error(`peer accepted no data for ${limitMs} ms`));
        }
      });
    },
    Math.max(25, Math.min(1000, limitMs / 4)),
  );
  timer.unref();
  for (const s of sides) s.once("close", () => clearInterval(timer));
}
