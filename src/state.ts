import { AccessToken } from "./auth/access-token.js";
import type { Config } from "./config.js";
import type { InitStore } from "./persist/init-store.js";

/** What POST /init changes, saved to be put back when the change cannot be made durable. */
export interface InitSnapshot {
  token: string | undefined;
  defaultUser: string;
  defaultWorkdir: string | undefined;
  userEnv: Map<string, string>;
  lastInitTimestampMs: number | undefined;
  initialized: boolean;
}

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
  /** Where what /init sets is kept across restarts; undefined when there is no state directory. */
  initStore: InitStore | undefined;

  constructor(config: Config) {
    this.accessToken = new AccessToken(config.accessToken);
    this.defaultUser = config.defaultUser;
    this.defaultWorkdir = config.defaultWorkdir;
    this.internalEnv.set("E2B_SANDBOX", config.isNotFc ? "false" : "true");
  }

  snapshot(): InitSnapshot {
    return {
      token: this.accessToken.get(),
      defaultUser: this.defaultUser,
      defaultWorkdir: this.defaultWorkdir,
      userEnv: this.userEnv,
      lastInitTimestampMs: this.lastInitTimestampMs,
      initialized: this.initialized,
    };
  }

  putBack(s: InitSnapshot): void {
    this.accessToken.set(s.token);
    this.defaultUser = s.defaultUser;
    this.defaultWorkdir = s.defaultWorkdir;
    this.userEnv = s.userEnv;
    this.lastInitTimestampMs = s.lastInitTimestampMs;
    this.initialized = s.initialized;
  }

  /** Every default variable, internal ones winning over user ones. */
  envVars(): Map<string, string> {
    const all = new Map(this.userEnv);
    for (const [k, v] of this.internalEnv) all.set(k, v);
    return all;
  }
}
