import type { DaemonContext } from "../daemon-context.js";
import { claimStateDir } from "./daemon-record.js";
import { InitStore } from "./init-store.js";
import { StateDir, UntrustedStateError } from "./state-dir.js";
import { compactTempJournal, openTempJournal, tempDirsOfThisRun } from "./temp-dirs.js";
import { sweepTempFiles } from "./temp-sweep.js";

export { UntrustedStateError };

/**
 * Opens <run-dir>/envd-state and restores what POST /init set before the daemon serves.
 * Throws UntrustedStateError when the state may hold an access token that cannot be read (the
 * daemon then refuses to start rather than serve without the token), or when another live
 * daemon uses the same state directory.
 */
export function restorePersistentState(ctx: DaemonContext): PersistentState | undefined {
  const opened = StateDir.open(ctx.config.runDir);
  if (opened.warning) ctx.log.warn(opened.warning);
  if (!opened.dir) return undefined;
  claimStateDir(opened.dir);
  const store = new InitStore(opened.dir, ctx.config, ctx.log);
  store.restore(ctx.state);
  ctx.state.initStore = store;
  let previousTempDirs: Buffer[] = [];
  try {
    previousTempDirs = openTempJournal(opened.dir, ctx.log);
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, "cannot record the directories of temporary files; leftovers of a killed daemon will stay");
  }
  return { dir: opened.dir, previousTempDirs };
}

/** The opened state directory and what the previous daemons left to clean up. */
export interface PersistentState {
  dir: StateDir;
  previousTempDirs: Buffer[];
}

/**
 * Removes the temporary files that earlier daemons left in the directories they recorded
 * (uploads, copies and composes they never finished). Runs while the daemon serves: only
 * files last changed before this daemon started are touched, never those of its own requests.
 */
export async function cleanUpAfterPreviousDaemons(ctx: DaemonContext, state: PersistentState): Promise<void> {
  try {
    const dirs = state.previousTempDirs;
    const removed = await sweepTempFiles(dirs, ctx.state.startedAt, ctx.log);
    if (dirs.length > 0) ctx.log.info({ removed, directories: dirs.length }, "removed the temporary files of transfers a previous daemon interrupted");
    compactTempJournal(state.dir, ctx.log);
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message }, "cannot clean up after the previous daemon");
  }
}

/** At a graceful stop, once no request runs: the temporaries of transfers it interrupted. */
export async function removeInterruptedTemps(ctx: DaemonContext): Promise<void> {
  const removed = await sweepTempFiles(tempDirsOfThisRun(), Infinity, ctx.log);
  if (removed > 0) ctx.log.info({ removed }, "removed temporary files of interrupted transfers");
}
