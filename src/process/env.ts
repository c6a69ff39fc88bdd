import type { UserAccount } from "../users/passwd.js";

/**
 * The child's environment as E2B composes it (docs/protocol.md, "Start", environment): the daemon's
 * PATH, HOME, USER, LOGNAME, then the daemon defaults (/init envVars and internal
 * ones), then the request's envs; later entries win. Nothing else is inherited.
 */
export function composeEnv(user: UserAccount, defaults: Map<string, string>, requested: Record<string, string>, daemonPath: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    PATH: daemonPath ?? "",
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
  };
  for (const [k, v] of defaults) env[k] = v;
  for (const [k, v] of Object.entries(requested)) env[k] = v;
  return env;
}
