import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { formatHostPort } from "./address.js";
import { ProxyError } from "./errors.js";
import { timerDelay } from "../system/timer-delay.js";

/** How a wait ended well. */
export interface WaitResult {
  elapsedMs: number;
  attempts: number;
}

function tryConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (err?: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timerDelay(timeoutMs));
    s.once("connect", () => done());
    s.once("error", (err) => done(err.message));
  });
}

/**
 * Tries to connect to host:port every intervalMs until one connection is accepted.
 * Throws deadline_exceeded after timeoutMs; stops early when `signal` aborts.
 */
export async function waitForPort(host: string, port: number, timeoutMs: number, intervalMs: number, signal: AbortSignal): Promise<WaitResult> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let attempts = 0;
  let lastError = "";
  for (;;) {
    if (signal.aborted) throw signal.reason ?? new Error("cancelled");
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    attempts++;
    const err = await tryConnect(host, port, Math.min(remaining, 1000));
    if (err === undefined) return { elapsedMs: Date.now() - started, attempts };
    lastError = err;
    const pause = Math.min(intervalMs, deadline - Date.now());
    if (pause > 0) await sleep(timerDelay(pause), undefined, { signal }).catch(() => {});
  }
  throw new ProxyError("deadline_exceeded", `nothing accepted connections on ${formatHostPort(host, port)} within ${timeoutMs} ms (${attempts} attempts, last: ${lastError})`);
}
