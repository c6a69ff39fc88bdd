import { createHash } from "node:crypto";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { DaemonState } from "../state.js";
import { UntrustedStateError, type StateDir } from "./state-dir.js";

/** The access token, alone in its file: that one must fail closed when it cannot be read. */
const TOKEN_FILE = "access-token.json";
/** Everything else POST /init sets: a damaged copy is only a warning. */
const INIT_FILE = "init.json";

interface StoredToken {
  v: 1;
  /** sha256 (hex) of the --access-token the daemon ran with when this was stored; null: none. */
  flagTokenSha256: string | null;
  token: string | null;
}

interface StoredInit {
  v: 1;
  /** The flags the values below were set over: an operator who changes a flag gets the flag. */
  flags: { defaultUser: string; defaultWorkdir: string | null };
  defaultUser: string;
  defaultWorkdir: string | null;
  envVars: Record<string, string>;
  lastInitTimestampMs: number | null;
  initialized: boolean;
}

function sha256(s: string | undefined): string | null {
  return s === undefined ? null : createHash("sha256").update(s, "utf8").digest("hex");
}

const isString = (v: unknown): v is string => typeof v === "string";
const isStringOrNull = (v: unknown): v is string | null => v === null || typeof v === "string";

function parseToken(raw: Buffer): StoredToken {
  const v = JSON.parse(raw.toString("utf8")) as Partial<StoredToken> | null;
  if (!v || v.v !== 1 || !isStringOrNull(v.flagTokenSha256) || !isStringOrNull(v.token) || v.token === "") throw new Error("unexpected content");
  return v as StoredToken;
}

function parseInit(raw: Buffer): StoredInit {
  const v = JSON.parse(raw.toString("utf8")) as Partial<StoredInit> | null;
  const ok =
    !!v &&
    v.v === 1 &&
    !!v.flags &&
    isString(v.flags.defaultUser) &&
    isStringOrNull(v.flags.defaultWorkdir) &&
    isString(v.defaultUser) &&
    isStringOrNull(v.defaultWorkdir) &&
    !!v.envVars &&
    typeof v.envVars === "object" &&
    !Array.isArray(v.envVars) &&
    Object.values(v.envVars).every(isString) &&
    (v.lastInitTimestampMs === null || Number.isFinite(v.lastInitTimestampMs)) &&
    typeof v.initialized === "boolean";
  if (!ok) throw new Error("unexpected content");
  return v as StoredInit;
}

/**
 * Keeps what POST /init set in the state directory and restores it at start, so a daemon
 * that crashed, was killed or upgraded comes back as the orchestrator left it: a sandbox
 * that had a token still requires it, processes get the same defaults, and a replayed
 * /init (timestamp not newer than the last applied) is still ignored.
 */
export class InitStore {
  private storedTokenJson: string | undefined;

  constructor(
    private readonly dir: StateDir,
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  /**
   * Applies the stored state over the flags' values. A damaged init file is a warning; an
   * access token file that exists but cannot be read throws UntrustedStateError: a daemon
   * that had a token must not come back serving without one.
   */
  restore(state: DaemonState): void {
    this.restoreToken(state);
    this.restoreInit(state);
  }

  private restoreToken(state: DaemonState): void {
    let stored: StoredToken;
    try {
      const raw = this.dir.read(TOKEN_FILE);
      if (raw === undefined) return;
      stored = parseToken(raw);
    } catch (err) {
      throw new UntrustedStateError(
        `the stored access token (${this.dir.file(TOKEN_FILE)}) cannot be read: ${(err as Error).message}. ` +
          "Refusing to start: the sandbox may have had a token, and serving without it would let anyone in. " +
          "Restore the file, or remove it to start with the --access-token flag's token (or none) again",
      );
    }
    if (stored.flagTokenSha256 !== sha256(this.config.accessToken)) {
      this.log.info("the --access-token flag changed since the token was stored: the flag applies");
      // Stored over now, so the replaced token cannot come back when the flag changes again.
      const current: StoredToken = { v: 1, flagTokenSha256: sha256(this.config.accessToken), token: this.config.accessToken ?? null };
      try {
        this.dir.writeSync(TOKEN_FILE, JSON.stringify(current));
        this.storedTokenJson = JSON.stringify(current);
      } catch (err) {
        throw new UntrustedStateError(`cannot replace the stored access token (${this.dir.file(TOKEN_FILE)}): ${(err as Error).message}`);
      }
      return;
    }
    state.accessToken.set(stored.token ?? undefined);
    this.storedTokenJson = JSON.stringify(stored);
  }

  private restoreInit(state: DaemonState): void {
    let stored: StoredInit;
    try {
      const raw = this.dir.read(INIT_FILE);
      if (raw === undefined) return;
      stored = parseInit(raw);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, path: this.dir.file(INIT_FILE) }, "the stored /init state cannot be read; serving without it (defaults from the flags)");
      return;
    }
    const flagsSame = stored.flags.defaultUser === this.config.defaultUser && stored.flags.defaultWorkdir === (this.config.defaultWorkdir ?? null);
    if (flagsSame) {
      state.defaultUser = stored.defaultUser;
      state.defaultWorkdir = stored.defaultWorkdir ?? undefined;
    } else {
      this.log.info("--default-user or --default-workdir changed since /init state was stored: the flags apply");
    }
    state.userEnv = new Map(Object.entries(stored.envVars));
    state.lastInitTimestampMs = stored.lastInitTimestampMs ?? undefined;
    state.initialized = stored.initialized;
    this.log.info(
      { defaultUser: state.defaultUser, envVars: state.userEnv.size, token: state.accessToken.isSet(), initialized: state.initialized },
      "restored the /init state",
    );
  }

  /** Stores the state as it is now; resolves once it is durable. The token goes first. */
  async save(state: DaemonState): Promise<void> {
    const token: StoredToken = { v: 1, flagTokenSha256: sha256(this.config.accessToken), token: state.accessToken.get() ?? null };
    const tokenJson = JSON.stringify(token);
    if (tokenJson !== this.storedTokenJson) {
      await this.dir.write(TOKEN_FILE, tokenJson);
      this.storedTokenJson = tokenJson;
    }
    const init: StoredInit = {
      v: 1,
      flags: { defaultUser: this.config.defaultUser, defaultWorkdir: this.config.defaultWorkdir ?? null },
      defaultUser: state.defaultUser,
      defaultWorkdir: state.defaultWorkdir ?? null,
      envVars: Object.fromEntries(state.userEnv),
      lastInitTimestampMs: state.lastInitTimestampMs ?? null,
      initialized: state.initialized,
    };
    await this.dir.write(INIT_FILE, JSON.stringify(init));
  }
}

export { UntrustedStateError };
