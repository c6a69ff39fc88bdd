import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { DaemonContext } from "../../daemon-context.js";
import { keepaliveIntervalMs, withKeepalive } from "../../http/keepalive.js";
import type { ProcEvent } from "../events.js";
import type { Subscription } from "../subscription.js";

/** How a process stream is shaped for one RPC. */
export interface PumpOptions<T> {
  sub: Subscription;
  /** Sent before anything else (Connect's start, Attach's attached). */
  first?: T[];
  /** The first event from the subscription goes out before keepalives start (Start's start event). */
  firstFromSubscription?: boolean;
  map(ev: ProcEvent): T | undefined;
  ping(): T;
  hctx: HandlerContext;
  ctx: DaemonContext;
}

/**
 * Turns a subscription into a response stream: mapped events, keepalives when
 * idle, and the right ending. A client that goes away only detaches (the
 * process keeps running); a passed deadline ends the stream with
 * deadline_exceeded. (On daemon shutdown the server ends every stream with
 * unavailable, see endStreamsOnShutdown.)
 */
export async function* pumpEvents<T>(o: PumpOptions<T>): AsyncGenerator<T> {
  const { sub, hctx, ctx } = o;
  const stop = new AbortController();
  const onAbort = () => {
    stop.abort();
    sub.close();
  };
  if (hctx.signal.aborted) onAbort();
  else hctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (const f of o.first ?? []) yield f;
    if (o.firstFromSubscription) {
      const ev = await sub.next();
      const mapped = ev && o.map(ev);
      if (mapped !== undefined) yield mapped;
    }
    async function* events(): AsyncGenerator<T> {
      for (;;) {
        const ev = await sub.next();
        if (!ev) return;
        const mapped = o.map(ev);
        if (mapped !== undefined) yield mapped;
      }
    }
    yield* withKeepalive(events(), keepaliveIntervalMs(hctx, ctx.config.keepaliveSeconds), o.ping, stop.signal);
    if (stop.signal.aborted && hctx.signal.aborted) {
      const reason = hctx.signal.reason;
      if (reason instanceof ConnectError) throw reason;
      throw new ConnectError("stream cancelled", Code.Canceled);
    }
  } finally {
    hctx.signal.removeEventListener("abort", onAbort);
    sub.close();
  }
}
