import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "../log.js";
import type { ChildReaper } from "./child-reaper.js";

/** Whether the daemon is the init process of its pid namespace (a container or microVM). */
export function isInit(): boolean {
  return process.pid === 1;
}

async function waitForChildren(reaper: ChildReaper, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    reaper.sweep();
    if (!reaper.hasChildren()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
}

function signalAll(signal: NodeJS.Signals): void {
  try {
    // As PID 1, kill(-1) reaches every process of the namespace except ourselves.
    process.kill(-1, signal);
  } catch {
    /* ESRCH: nothing left */
  }
}

/**
 * The end of PID 1's shutdown, after the daemon's own (which already ended the process trees it
 * started): whatever else still runs in the namespace (orphans, daemons our commands left behind)
 * gets SIGTERM, then SIGKILL after `graceMs`, and is reaped, so that the namespace ends cleanly
 * rather than by the kernel's SIGKILL when init exits. Does nothing unless we are PID 1: kill(-1)
 * from anything else would hit every process the daemon's user may signal.
 */
export async function terminateRemaining(reaper: ChildReaper, log: Logger, graceMs = 2000): Promise<void> {
  if (!isInit()) return;
  if (!reaper.hasChildren()) return;
  signalAll("SIGTERM");
  if (await waitForChildren(reaper, graceMs)) return;
  log.warn({ graceMs }, "processes ignored SIGTERM; killing them");
  signalAll("SIGKILL");
  await waitForChildren(reaper, 1000);
}
