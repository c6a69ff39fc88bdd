import { writeFileSync } from "node:fs";
import type { Logger } from "../log.js";

/** The daemon's own oom_score_adj when root: the OOM killer picks anything else first (E2B's unit sets the same). */
export const DAEMON_OOM_SCORE_ADJ = -1000;

/**
 * Makes the daemon the last thing the OOM killer takes, so a runaway command
 * cannot take the sandbox's control plane down with it. Children are made
 * more killable (oom_score_adj 100) by the launcher. Best effort: lowering the
 * score needs CAP_SYS_RESOURCE, which a container may not grant.
 */
export function protectDaemon(log: Logger): void {
  if (process.getuid?.() !== 0) return;
  try {
    writeFileSync("/proc/self/oom_score_adj", String(DAEMON_OOM_SCORE_ADJ));
    log.info({ oomScoreAdj: DAEMON_OOM_SCORE_ADJ }, "daemon protected from the OOM killer");
  } catch (err) {
    log.info({ err: (err as Error).message }, "cannot lower the daemon's oom_score_adj (needs CAP_SYS_RESOURCE); it stays killable");
  }
}
