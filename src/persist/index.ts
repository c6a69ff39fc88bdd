import type { DaemonContext } from "../daemon-context.js";
import { InitStore } from "./init-store.js";
import { StateDir, UntrustedStateError } from "./state-dir.js";

export { UntrustedStateError };

/**
 * Opens <run-dir>/envd-state and restores what POST /init set before the daemon serves.
 * Throws UntrustedStateError when the state may hold an access token that cannot be read:
 * the daemon then refuses to start rather than serve without the token.
 */
export function restorePersistentState(ctx: DaemonContext): StateDir | undefined {
  const opened = StateDir.open(ctx.config.runDir);
  if (opened.warning) ctx.log.warn(opened.warning);
  if (!opened.dir) return undefined;
  const store = new InitStore(opened.dir, ctx.config, ctx.log);
  store.restore(ctx.state);
  ctx.state.initStore = store;
  return opened.dir;
}
