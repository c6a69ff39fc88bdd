import { AccessToken } from "./auth/access-token.js";
import type { Config } from "./config.js";

/** What POST /init and the flags can change at run time, kept in one place. */
export class DaemonState {
  readonly accessToken: AccessToken;
  defaultUser: string;
  defaultWorkdir: string | undefined;
  /** Variables envd sets itself (E2B_SANDBOX, ...); /init cannot change them. */
  readonly internalEnv: Map<string, string> = new Map();
  /** Variables from /init envVars; replaced as a whole by each /init. */
  userEnv: Map<string, string> = new Map();
  lastInitTimestampMs: number | undefined;
  readonly startedAt = Date.now();
  initialized = false;

  constructor(config: Config) {
    this.accessToken = new AccessToken(config.accessToken);
    this.defaultUser = config.defaultUser;
    this.defaultWorkdir = config.defaultWorkdir;
    this.internalEnv.set("E2B_SANDBOX", config.isNotFc ? "false" : "true");
  }

  /** Every default variable, internal ones winning over user ones. */
  envVars(): Map<string, string> {
    const all = new Map(this.userEnv);
    for (const [k, v] of this.internalEnv) all.set(k, v);
    return all;
  }
}
