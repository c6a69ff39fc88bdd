import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** What the request log needs to know about an RPC beyond its HTTP status. */
export interface RpcLogInfo {
  /** Connect code name ("ok", "not_found", ...) once the handler has answered or failed. */
  code?: string;
  /** The response as the protocol layer built it; its trailers carry gRPC statuses. */
  response?: UniversalServerResponse;
}

/** Where an RPC's {@link RpcLogInfo} travels, from the server's request handler to the interceptors. */
export const rpcLogKey = createContextKey<RpcLogInfo | undefined>(undefined, { description: "rpc log info" });

/**
 * The code to log for an RPC: what the handler ended with, or else the gRPC status the
 * protocol layer wrote itself (bad message, bad timeout), which no interceptor sees. A
 * response cut off before either is known was the client going away: canceled.
 */
export function loggedRpcCode(info: RpcLogInfo | undefined, responseAborted: boolean): string | undefined {
  if (!info) return undefined;
  if (info.code) return info.code;
  if (responseAborted) return "canceled";
  const grpc = info.response?.trailer?.get("grpc-status") ?? info.response?.header?.get("grpc-status");
  if (grpc == null) return undefined;
  const n = Number(grpc);
  return n === 0 ? "ok" : Number.isInteger(n) && Code[n] !== undefined ? codeToString(n as Code) : undefined;
}

function codeName(err: unknown): string {
  return codeToString(ConnectError.from(err).code);
}

/** Records how each RPC ended, including errors raised in the middle of a stream. */
export function recordRpcCode(): Interceptor {
  return (next) => async (req) => {
    const info = req.contextValues.get(rpcLogKey);
    if (!info) return next(req);
    try {
      const res = await next(req);
      if (!res.stream) {
        info.code = "ok";
        return res;
      }
      const messages = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* messages;
            info.code = "ok";
          } catch (err) {
            info.code = codeName(err);
            throw err;
          } finally {
            // Closed early without an error: the client went away.
            info.code ??= "canceled";
          }
        })(),
      };
    } catch (err) {
      info.code = codeName(err);
      throw err;
    }
  };
}

function shutdownError(signal: AbortSignal): ConnectError {
  return signal.reason instanceof ConnectError ? signal.reason : new ConnectError("daemon is shutting down", Code.Unavailable);
}

/**
 * Ends every server stream with an `unavailable` error once shutdown begins, whether or
 * not its handler watches the signal, so clients see a proper end instead of a cut socket.
 */
export function endStreamsOnShutdown(signal: AbortSignal): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (!res.stream) return res;
    const source = res.message;
    return {
      ...res,
      message: (async function* () {
        const it = source[Symbol.asyncIterator]();
        // One listener for the whole stream, pointed at the step in flight. (Racing every
        // step against one long-lived "stopped" promise kept every message, and its output
        // chunk, alive through that promise's reactions until the stream ended: 1 GiB
        // streamed held ~1 GiB.)
        let interrupt: ((err: ConnectError) => void) | undefined;
        const onAbort = () => interrupt?.(shutdownError(signal));
        signal.addEventListener("abort", onAbort, { once: true });
        let finished = false;
        try {
          for (;;) {
            if (signal.aborted) throw shutdownError(signal);
            const r = await new Promise<Awaited<ReturnType<typeof it.next>>>((resolve, reject) => {
              interrupt = reject;
              it.next().then(resolve, reject);
            });
            interrupt = undefined;
            if (r.done) break;
            yield r.value;
          }
          finished = true;
        } finally {
          interrupt = undefined;
          signal.removeEventListener("abort", onAbort);
          // A source still blocked in next() is told to stop once it wakes.
          if (!finished) void it.return?.()?.catch(() => {});
        }
        if (signal.aborted) throw shutdownError(signal);
      })(),
    };
  };
}
