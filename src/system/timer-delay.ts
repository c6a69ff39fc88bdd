/**
 * The longest delay setTimeout, setInterval and socket.setTimeout honour: Node turns a longer one
 * into 1 ms (with a TimeoutOverflowWarning), so a 3e9 ms timeout would fire at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay every Node timer honours: at most MAX_TIMER_MS (~24.8 days), at least 0; NaN is 0. */
export function timerDelay(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}
