import type { HandlerContext } from "@connectrpc/connect";
import { timerDelay } from "../system/timer-delay.js";

/**
 * The keepalive interval for a server stream, from the `Keepalive-Ping-Interval`
 * header in whole seconds; missing, zero, negative or garbage means the default.
 */
export function keepaliveIntervalMs(ctx: HandlerContext, defaultSeconds: number): number {
  const raw = ctx.requestHeader.get("keepalive-ping-interval");
  if (raw !== null && /^\s*\+?\d+\s*$/.test(raw)) {
    const n = Number(raw);
    if (n > 0 && n <= 86400) return n * 1000;
  }
  return defaultSeconds * 1000;
}

/**
 * Yields from `source`, and `ping()` whenever nothing was yielded for `intervalMs`.
 * The timer restarts after every item, so pings only go out on idle streams.
 */
export async function* withKeepalive<T>(
  source: AsyncIterable<T>,
  intervalMs: number,
  ping: () => T,
  signal: AbortSignal,
): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  let abortWait: (() => void) | undefined;
  const onAbort = () => abortWait?.();
  signal.addEventListener("abort", onAbort);
  try {
    for (;;) {
      pending ??= it.next();
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<"tick" | "abort">((resolve) => {
        timer = setTimeout(() => resolve("tick"), timerDelay(intervalMs));
        abortWait = () => resolve("abort");
      });
      const winner = await Promise.race([pending, tick]);
      clearTimeout(timer);
      if (winner === "abort") return;
      if (winner === "tick") {
        yield ping();
        continue;
      }
      pending = undefined;
      if (winner.done) return;
      yield winner.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    // A source blocked in next() cannot be awaited here; its return() runs once it wakes.
    if (pending) void it.return?.()?.catch(() => {});
    else await it.return?.();
  }
}
