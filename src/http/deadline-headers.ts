import type { HttpRequest } from "./types.js";
import { MAX_TIMER_MS } from "../system/timer-delay.js";

/** grpc-timeout units in milliseconds. */
const GRPC_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * Clients may ask for deadlines up to 10 digits of ms (Connect-Timeout-Ms) or 8 digits of hours
 * (grpc-timeout), as connect-go honours them. connect-es arms one timer with the value, and a timer
 * past MAX_TIMER_MS fires at once: the call would end as deadline_exceeded immediately. A deadline
 * that far out is cut to MAX_TIMER_MS (~24.8 days) before connect-es reads it.
 */
export function clampDeadlineHeaders(req: HttpRequest): void {
  const headers = req.headers as Record<string, string | string[] | undefined>;
  const connect = headers["connect-timeout-ms"];
  if (typeof connect === "string" && /^\d{1,10}$/.test(connect) && Number(connect) > MAX_TIMER_MS) {
    headers["connect-timeout-ms"] = String(MAX_TIMER_MS);
  }
  const grpc = headers["grpc-timeout"];
  const m = typeof grpc === "string" ? /^(\d{1,8})([HMSmun])$/.exec(grpc) : null;
  if (m && Number(m[1]) * GRPC_UNITS[m[2]!]! > MAX_TIMER_MS) {
    headers["grpc-timeout"] = `${Math.floor(MAX_TIMER_MS / 1000)}S`;
  }
}
