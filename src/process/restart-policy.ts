import type { ExitInfo } from "./exit-status.js";
import type { RestartSpec } from "./process-spec.js";
import { timerDelay } from "../system/timer-delay.js";

const DEFAULT_BACKOFF_MS = 1000;
const DEFAULT_MAX_BACKOFF_MS = 30_000;

/** Whether a supervised process runs again after `exit`, having restarted `restarts` times. */
export function wantsRestart(policy: RestartSpec, exit: ExitInfo, restarts: number): boolean {
  if (policy.maxRestarts > 0 && restarts >= policy.maxRestarts) return false;
  if (policy.mode === "always") return true;
  if (policy.mode === "on_failure") return exit.outcome !== "exited" || exit.exitCode !== 0;
  return false;
}

/** The wait before restart number `restarts + 1`: the backoff, doubled per restart, capped. */
export function restartDelayMs(policy: RestartSpec, restarts: number): number {
  const base = policy.backoffMs || DEFAULT_BACKOFF_MS;
  const max = Math.max(base, policy.maxBackoffMs || DEFAULT_MAX_BACKOFF_MS);
  // Backoffs are uint32 on the wire: past the longest timer Node keeps, they are cut to it.
  return timerDelay(Math.min(max, base * 2 ** Math.min(restarts, 20)));
}
