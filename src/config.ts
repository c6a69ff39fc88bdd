import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseArgs } from "node:util";

/** The envd protocol version envd-ts implements; reported by `-version` and `X-Envd-Version`. */
export const ENVD_COMPAT_VERSION = "0.6.13";
/** envd-ts's own version. */
export const DAEMON_VERSION = "0.1.0";

/** pino levels, as --log-level takes them. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** Everything the daemon is configured with, parsed once at start. */
export interface Config {
  port: number;
  listenAddress: string;
  defaultUser: string;
  defaultWorkdir: string | undefined;
  accessToken: string | undefined;
  logLevel: LogLevel;
  /** Running outside Firecracker (E2B's -isnotfc); envd-ts never polls MMDS either way. */
  isNotFc: boolean;
  /** Set the system clock from /init's timestamp when it is off, as E2B's envd does after a snapshot resume. */
  clockSync: boolean;
  cgroupRoot: string;
  noCgroups: boolean;
  /** Which cgroup hierarchy limits use: auto (v2 when it has the controllers, else v1), v2, v1 or none. */
  cgroupMode: "auto" | "v2" | "v1" | "none";
  /** The daemon-wide execution policy: default limits and hardening for every process (src/isolation/policy.ts). */
  policy: PolicyConfig;
  /** Most client connections held at once; 0: from the open-file limit (see connection-guard.ts). */
  maxConnections: number;
  /** How long a connection without an authenticated request may wait for one, in seconds. */
  unauthenticatedIdleSeconds: number;
  /** Largest RPC message accepted or sent, in bytes. File transfers are not limited by it. */
  maxMessageBytes: number;
  /** Default keepalive interval for server streams when the client sends none. */
  keepaliveSeconds: number;
  /** Bytes of output kept per process for replay. */
  outputBufferBytes: number;
  /** How long and how many finished processes stay in the history. */
  historyTtlSeconds: number;
  historyMaxEntries: number;
  /** On SIGTERM, leave running processes running instead of stopping them (a restart or an upgrade). */
  keepProcessesOnStop: boolean;
  /** Root jail for file operations (RPCs and /files); undefined means none. */
  fsRoot: string | undefined;
  /** Largest whole-file read or upload in bytes; 0 means no limit. */
  maxFileBytes: number;
  /** Check the requesting user's file permissions (off by default, as in E2B). */
  enforceFilePermissions: boolean;
  /** Events a watcher may queue before it reports an overflow. */
  watchQueueMax: number;
  /** Directory for the files E2B's envd writes at start (`.E2B_SANDBOX`) and for envd-state (what /init set, kept across restarts). */
  runDir: string;
  /** Address where loopback-only listeners are exposed (E2B's socat forwards); undefined: off. */
  exposeAddress: string | undefined;
  /** Check GET /health of the daemon on `port` and exit 0 or 1 instead of serving (container HEALTHCHECK). */
  probe: boolean;
}

/** Execution defaults from the flags, as given; names and files are checked when the process service starts. */
export interface PolicyConfig {
  memoryMaxBytes?: number;
  cpuTimeMs?: number;
  cpuCores?: number;
  pidsMax?: number;
  nofile?: number;
  noNewPrivs: boolean;
  /** "none", "default" or a file with one syscall name to deny per line. */
  seccompProfile: string;
  dropCaps: string[];
  addCaps: string[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Run every process in its own user namespace (run-as uid and gid are 0 inside). */
  userNamespace: boolean;
  /** Requests may loosen these defaults (raise limits, drop hardening); otherwise only tighten. */
  allowOverride: boolean;
}

export interface FlagSpec {
  name: string;
  env?: string;
  type: "string" | "boolean";
  help: string;
  default?: string;
}

export const FLAGS: FlagSpec[] = [
  { name: "port", env: "ENVD_PORT", type: "string", default: "49983", help: "TCP port to listen on (0 picks a free one)" },
  { name: "listen", env: "ENVD_LISTEN_ADDRESS", type: "string", default: "0.0.0.0", help: "address to listen on" },
  { name: "default-user", env: "ENVD_DEFAULT_USER", type: "string", default: "root", help: "user for requests that name none (POST /init defaultUser overrides)" },
  { name: "default-workdir", env: "ENVD_DEFAULT_WORKDIR", type: "string", help: "working directory for requests that give none (default: the user's home)" },
  { name: "access-token", env: "ENVD_ACCESS_TOKEN", type: "string", help: "require this X-Access-Token on every request (POST /init can also set it); prefer --access-token-file, since a command line is shown to every user until the daemon hides it at start" },
  { name: "access-token-file", env: "ENVD_ACCESS_TOKEN_FILE", type: "string", help: "read the access token from this file once at start (a trailing newline is dropped); the preferred way to give it" },
  { name: "log-level", env: "ENVD_LOG_LEVEL", type: "string", default: "info", help: "trace, debug, info, warn, error, fatal or silent" },
  { name: "max-connections", env: "ENVD_MAX_CONNECTIONS", type: "string", default: "0", help: "most client connections held at once; at the cap a new one closes the longest-idle one (0: three quarters of the open-file limit, at most 50000)" },
  { name: "unauthenticated-idle-seconds", env: "ENVD_UNAUTHENTICATED_IDLE_SECONDS", type: "string", default: "10", help: "close a connection that has sent no request passing the token check after this long without one in flight" },
  { name: "max-message-bytes", env: "ENVD_MAX_MESSAGE_BYTES", type: "string", default: String(16 * 1024 * 1024), help: "largest RPC message in bytes" },
  { name: "keepalive-seconds", env: "ENVD_KEEPALIVE_SECONDS", type: "string", default: "90", help: "keepalive interval on idle streams when the client sends no Keepalive-Ping-Interval" },
  { name: "output-buffer-bytes", env: "ENVD_OUTPUT_BUFFER_BYTES", type: "string", default: String(1024 * 1024), help: "output kept per process for replay" },
  { name: "history-ttl-seconds", env: "ENVD_HISTORY_TTL_SECONDS", type: "string", default: "3600", help: "how long finished processes stay in the history" },
  { name: "history-max", env: "ENVD_HISTORY_MAX", type: "string", default: "1000", help: "how many finished processes the history keeps" },
  { name: "keep-processes-on-stop", env: "ENVD_KEEP_PROCESSES_ON_STOP", type: "boolean", help: "on SIGTERM leave running processes running (their output streams end; a new daemon does not re-adopt them yet) instead of stopping them" },
  { name: "fs-root", env: "ENVD_FS_ROOT", type: "string", help: "confine every file operation beneath this directory" },
  { name: "max-file-bytes", env: "ENVD_MAX_FILE_BYTES", type: "string", default: "0", help: "largest whole-file read or upload in bytes (0: no limit)" },
  { name: "enforce-file-permissions", env: "ENVD_ENFORCE_FILE_PERMISSIONS", type: "boolean", help: "refuse file operations the requesting user could not do itself" },
  { name: "watch-queue-max", env: "ENVD_WATCH_QUEUE_MAX", type: "string", default: "10000", help: "events a watcher queues before reporting an overflow" },
  { name: "run-dir", env: "ENVD_RUN_DIR", type: "string", default: "/run/e2b", help: "where the sandbox marker files and the daemon state (envd-state: what POST /init set, kept across restarts) are written" },
  { name: "expose-address", env: "ENVD_EXPOSE_ADDRESS", type: "string", help: "expose services listening only on loopback on this IP, like E2B's socat forwards (empty: off)" },
  { name: "cgroup-root", env: "ENVD_CGROUP_ROOT", type: "string", default: "/sys/fs/cgroup", help: "cgroup mount point" },
  { name: "no-cgroups", env: "ENVD_NO_CGROUPS", type: "boolean", help: "do not use cgroups" },
  { name: "cgroup-mode", env: "ENVD_CGROUP_MODE", type: "string", default: "auto", help: "cgroups for process limits: auto, v2, v1 or none (v2 uses --cgroup-root or its 'unified' mount)" },
  { name: "default-memory-max", env: "ENVD_DEFAULT_MEMORY_MAX", type: "string", help: "memory limit of every process, bytes (K, M, G suffixes)" },
  { name: "default-cpu-time-ms", env: "ENVD_DEFAULT_CPU_TIME_MS", type: "string", help: "CPU time limit of every process tree, ms" },
  { name: "default-cpu-cores", env: "ENVD_DEFAULT_CPU_CORES", type: "string", help: "CPU bandwidth of every process tree, in cores (0.5 = half a core)" },
  { name: "default-pids-max", env: "ENVD_DEFAULT_PIDS_MAX", type: "string", help: "task (process and thread) limit of every process tree" },
  { name: "default-nofile", env: "ENVD_DEFAULT_NOFILE", type: "string", help: "open file limit (RLIMIT_NOFILE) of every process" },
  { name: "no-new-privs", env: "ENVD_NO_NEW_PRIVS", type: "boolean", help: "set no_new_privs on every process (setuid programs such as sudo stop working)" },
  { name: "seccomp-profile", env: "ENVD_SECCOMP_PROFILE", type: "string", default: "none", help: "seccomp for every process: none, default (container runtimes' deny list) or a file of syscall names to deny" },
  { name: "drop-caps", env: "ENVD_DROP_CAPS", type: "string", help: "capabilities every process loses, comma-separated (CAP_NET_RAW or net_raw, or ALL)" },
  { name: "add-caps", env: "ENVD_ADD_CAPS", type: "string", help: "capabilities every process gets, also as a non-root user (ambient), comma-separated" },
  { name: "masked-paths", env: "ENVD_MASKED_PATHS", type: "string", help: "absolute paths hidden from every process, comma-separated (private mount namespace)" },
  { name: "readonly-paths", env: "ENVD_READONLY_PATHS", type: "string", help: "absolute paths read-only for every process, comma-separated (private mount namespace)" },
  { name: "user-namespace", env: "ENVD_USER_NAMESPACE", type: "boolean", help: "run every process in its own user namespace: root inside, the run-as user outside" },
  { name: "allow-override", env: "ENVD_ALLOW_OVERRIDE", type: "boolean", help: "let requests loosen the defaults above (raise limits, drop hardening); otherwise they may only tighten them" },
  { name: "isnotfc", type: "boolean", help: "accepted for E2B compatibility (not in Firecracker)" },
  { name: "no-clock-sync", env: "ENVD_NO_CLOCK_SYNC", type: "boolean", help: "never set the system clock from POST /init's timestamp (by default, as E2B's envd, a clock more than 50 ms behind or 5 s ahead of it is set)" },
  { name: "verbose", type: "boolean", help: "same as --log-level debug" },
  { name: "probe", type: "boolean", help: "check GET /health of the daemon on --port and exit 0 (healthy) or 1, for HEALTHCHECK" },
  { name: "version", type: "boolean", help: "print the envd protocol version and exit" },
  { name: "help", type: "boolean", help: "print this help and exit" },
];

/** Raised for a flag or variable that cannot be used; main prints it and exits 2. */
export class ConfigError extends Error {}

/** What the command line asks for: run with a config, or print help or the version. */
export type ParsedCli =
  | { kind: "run"; config: Config }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string };

/** Go-style single-dash long flags (`-port 1`) are accepted by rewriting them to `--port`. */
function normalizeArgs(argv: string[]): string[] {
  return argv.map((a) => (/^-[a-z][a-z-]+(=.*)?$/.test(a) ? `-${a}` : a));
}

/** `envd --help`, generated from FLAGS so it lists every flag and variable. */
export function helpText(): string {
  const lines = [
    `envd ${DAEMON_VERSION}: an E2B envd-compatible sandbox daemon (protocol ${ENVD_COMPAT_VERSION})`,
    "",
    "Usage: envd [flags]   (flags take one or two dashes; each may also be set by its variable)",
    "       envd COMMAND ...   (ps, logs, exec, kill, top, proxy, ports: envd help)",
    "",
  ];
  for (const f of FLAGS) {
    const left = `  --${f.name}${f.type === "string" ? " VALUE" : ""}`;
    const env = f.env ? ` [${f.env}]` : "";
    const def = f.default !== undefined ? ` (default ${f.default})` : "";
    lines.push(`${left.padEnd(34)}${f.help}${def}${env}`);
  }
  return lines.join("\n") + "\n";
}

function integer(name: string, raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`--${name}: '${raw}' is not an integer`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

function exposeAddress(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  if (isIP(raw) === 0) throw new ConfigError(`--expose-address: '${raw}' is not an IP address`);
  return raw;
}

/** "64M" → 67108864; plain numbers are bytes. */
function byteSize(name: string, raw: string): number {
  const m = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(raw.trim());
  if (!m) throw new ConfigError(`--${name}: '${raw}' is not a size (bytes, or a number with K, M, G or T)`);
  const n = Number(m[1]) * 1024 ** " kmgt".indexOf((m[2] || " ").toLowerCase());
  if (!Number.isSafeInteger(n) || n <= 0) throw new ConfigError(`--${name}: '${raw}' is out of range`);
  return n;
}

function positiveNumber(name: string, raw: string): number {
  const n = Number(raw.trim());
  if (!Number.isFinite(n) || n <= 0 || raw.trim() === "") throw new ConfigError(`--${name}: '${raw}' is not a positive number`);
  return n;
}

function list(raw: string | undefined): string[] {
  return (raw ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

/**
 * The access token from --access-token, --access-token-file or their variables (flags win).
 * Giving both a token and a token file at the same level is refused: which one is meant is unclear.
 */
function readAccessToken(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): string | undefined {
  const fromFlags = { token: values["access-token"] as string | undefined, file: values["access-token-file"] as string | undefined };
  const fromEnv = { token: env.ENVD_ACCESS_TOKEN || undefined, file: env.ENVD_ACCESS_TOKEN_FILE || undefined };
  const level = fromFlags.token !== undefined || fromFlags.file !== undefined ? fromFlags : fromEnv;
  if (level.token !== undefined && level.file !== undefined) {
    throw new ConfigError(level === fromFlags ? "give --access-token or --access-token-file, not both" : "set ENVD_ACCESS_TOKEN or ENVD_ACCESS_TOKEN_FILE, not both");
  }
  if (level.file === undefined) return level.token;
  let text: string;
  try {
    text = readFileSync(level.file, "utf8");
  } catch (err) {
    throw new ConfigError(`--access-token-file: cannot read '${level.file}': ${(err as Error).message}`);
  }
  const token = text.replace(/(\r?\n)+$/, "");
  if (token === "") throw new ConfigError(`--access-token-file: '${level.file}' is empty`);
  return token;
}

const CGROUP_MODES = ["auto", "v2", "v1", "none"] as const;

const LOG_LEVELS: LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** Parses flags and environment variables into one Config. Flags win over variables. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv): ParsedCli {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const f of FLAGS) options[f.name] = { type: f.type };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: normalizeArgs(argv), options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (values.help) return { kind: "help", text: helpText() };
  if (values.version) return { kind: "version", text: ENVD_COMPAT_VERSION + "\n" };

  const get = (name: string): string | undefined => {
    const spec = FLAGS.find((f) => f.name === name)!;
    const v = values[name];
    if (typeof v === "string") return v;
    if (spec.env && env[spec.env] !== undefined && env[spec.env] !== "") return env[spec.env];
    return spec.default;
  };
  const flag = (name: string): boolean => {
    const spec = FLAGS.find((f) => f.name === name)!;
    if (values[name] === true) return true;
    const e = spec.env ? env[spec.env] : undefined;
    return e === "1" || e === "true";
  };

  const opt = <T>(raw: string | undefined, parse: (v: string) => T): T | undefined => (raw === undefined || raw === "" ? undefined : parse(raw));
  const cgroupMode = (raw: string): Config["cgroupMode"] => {
    if (!(CGROUP_MODES as readonly string[]).includes(raw)) throw new ConfigError(`--cgroup-mode: '${raw}' is not one of ${CGROUP_MODES.join(", ")}`);
    return raw as Config["cgroupMode"];
  };
  let logLevel = (get("log-level") ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`--log-level: '${logLevel}' is not one of ${LOG_LEVELS.join(", ")}`);
  if (flag("verbose")) logLevel = "debug";

  const accessToken = readAccessToken(values, env);
  const config: Config = {
    port: integer("port", get("port")!, 0, 65535),
    listenAddress: get("listen")!,
    defaultUser: get("default-user")!,
    defaultWorkdir: get("default-workdir") || undefined,
    accessToken: accessToken ? accessToken : undefined,
    logLevel,
    isNotFc: flag("isnotfc"),
    clockSync: !flag("no-clock-sync"),
    cgroupRoot: get("cgroup-root")!,
    noCgroups: flag("no-cgroups"),
    cgroupMode: cgroupMode(get("cgroup-mode")!),
    policy: {
      memoryMaxBytes: opt(get("default-memory-max"), (v) => byteSize("default-memory-max", v)),
      cpuTimeMs: opt(get("default-cpu-time-ms"), (v) => integer("default-cpu-time-ms", v, 1, 10 ** 12)),
      cpuCores: opt(get("default-cpu-cores"), (v) => positiveNumber("default-cpu-cores", v)),
      pidsMax: opt(get("default-pids-max"), (v) => integer("default-pids-max", v, 1, 2 ** 31 - 1)),
      nofile: opt(get("default-nofile"), (v) => integer("default-nofile", v, 1, 2 ** 31 - 1)),
      noNewPrivs: flag("no-new-privs"),
      seccompProfile: get("seccomp-profile") || "none",
      dropCaps: list(get("drop-caps")),
      addCaps: list(get("add-caps")),
      maskedPaths: list(get("masked-paths")),
      readonlyPaths: list(get("readonly-paths")),
      userNamespace: flag("user-namespace"),
      allowOverride: flag("allow-override"),
    },
    maxConnections: integer("max-connections", get("max-connections")!, 0, 10_000_000),
    unauthenticatedIdleSeconds: integer("unauthenticated-idle-seconds", get("unauthenticated-idle-seconds")!, 1, 86400),
    maxMessageBytes: integer("max-message-bytes", get("max-message-bytes")!, 1024, 2 ** 31 - 1),
    keepaliveSeconds: integer("keepalive-seconds", get("keepalive-seconds")!, 1, 86400),
    outputBufferBytes: integer("output-buffer-bytes", get("output-buffer-bytes")!, 0, 2 ** 31 - 1),
    historyTtlSeconds: integer("history-ttl-seconds", get("history-ttl-seconds")!, 0, 10 ** 8),
    historyMaxEntries: integer("history-max", get("history-max")!, 0, 10 ** 7),
    keepProcessesOnStop: flag("keep-processes-on-stop"),
    fsRoot: get("fs-root") || undefined,
    maxFileBytes: integer("max-file-bytes", get("max-file-bytes")!, 0, Number.MAX_SAFE_INTEGER),
    enforceFilePermissions: flag("enforce-file-permissions"),
    watchQueueMax: integer("watch-queue-max", get("watch-queue-max")!, 1, 10_000_000),
    runDir: get("run-dir")!,
    exposeAddress: exposeAddress(get("expose-address")),
    probe: flag("probe"),
  };
  return { kind: "run", config };
}
