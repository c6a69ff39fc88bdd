import type { Config } from "./config.js";
import type { Logger } from "./log.js";
import type { DaemonState } from "./state.js";

/** What every capability is given when it is wired into the server. */
export interface DaemonContext {
  config: Config;
  state: DaemonState;
  log: Logger;
  /** Aborted when the daemon starts shutting down; long streams end on it. */
  shutdownSignal: AbortSignal;
}
