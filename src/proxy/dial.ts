import { connect as netConnect, type NetConnectOpts, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { formatHostPort } from "./address.js";
import { timerDelay } from "../system/timer-delay.js";

/** How to reach a remote: where, how long each attempt may take, how often to try. */
export interface DialOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  maxRetries: number;
  retryDelayMs: number;
  bufferSize: number;
  /** Speak TLS to the remote (https:// targets). */
  tls?: { servername: string | undefined; rejectUnauthorized: boolean };
  /** Gives up between attempts, e.g. when the client left meanwhile. */
  signal?: AbortSignal;
}

/** The last attempt's failure, with how many attempts were made. */
export class DialError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

function attempt(opts: DialOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const base = {
      host: opts.host,
      port: opts.port,
      allowHalfOpen: true,
      noDelay: true,
      readableHighWaterMark: opts.bufferSize,
      writableHighWaterMark: opts.bufferSize,
    } as NetConnectOpts;
    const socket: Socket = opts.tls
      ? tlsConnect({ ...(base as object), servername: opts.tls.servername, rejectUnauthorized: opts.tls.rejectUnauthorized, ALPNProtocols: ["http/1.1"] })
      : netConnect(base);
    const ready = opts.tls ? "secureConnect" : "connect";
    const timer = setTimeout(() => fail(Object.assign(new Error(`connect to ${formatHostPort(opts.host, opts.port)} timed out after ${opts.connectTimeoutMs} ms`), { code: "ETIMEDOUT" })), timerDelay(opts.connectTimeoutMs));
    const onAbort = () => fail(new Error("the client went away"));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      socket.off(ready, onReady);
      socket.off("error", fail);
    };
    function onReady() {
      cleanup();
      resolve(socket);
    }
    function fail(err: Error) {
      cleanup();
      socket.on("error", () => {});
      socket.destroy();
      reject(err);
    }
    socket.once(ready, onReady);
    socket.once("error", fail);
  });
}

/**
 * Connects to the remote, retrying up to maxRetries times with retryDelayMs between attempts.
 * Resolves with a connected socket that has no 'error' handler of its own yet.
 */
export async function dial(opts: DialOptions): Promise<Socket> {
  let last: Error | undefined;
  for (let i = 0; i <= opts.maxRetries; i++) {
    if (opts.signal?.aborted) break;
    if (i > 0) await new Promise((r) => setTimeout(r, timerDelay(opts.retryDelayMs)));
    if (opts.signal?.aborted) break;
    try {
      return await attempt(opts);
    } catch (err) {
      last = err as Error;
    }
  }
  const tries = opts.maxRetries + 1;
  const why = last ? last.message : "the client went away";
  throw new DialError(`cannot reach ${formatHostPort(opts.host, opts.port)}: ${why}${tries > 1 ? ` (${tries} attempts)` : ""}`, (last as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT");
}
