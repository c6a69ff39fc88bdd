import { readFileSync } from "node:fs";
import { ENVD_COMPAT_VERSION } from "../config.js";
import { native } from "../native.js";
import type { DaemonContext } from "../daemon-context.js";
import { HttpError, sendEmpty, sendJson, sendJsonError } from "../http/respond.js";
import type { HttpRequest, RouteHandler } from "../http/types.js";
import { CpuPercent, cpuCount, readDisk, readMemory } from "./host-metrics.js";
import { jsonTooDeep } from "../http/json-depth.js";

const MIB = 1024 * 1024;
const MAX_INIT_BODY = 1024 * 1024;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

async function readBody(req: HttpRequest, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

interface InitBody {
  envVars?: Record<string, string>;
  accessToken?: string;
  timestamp?: string;
  defaultUser?: string;
  defaultWorkdir?: string;
}

function parseInitBody(raw: Buffer): InitBody {
  if (raw.length === 0) return {};
  // Nothing /init takes nests deeply; a deep document would hold the thread in JSON.parse.
  if (jsonTooDeep(raw)) throw new HttpError(400, "", true);
  let v: unknown;
  try {
    v = JSON.parse(raw.toString("utf8"));
  } catch {
    throw new HttpError(400, "", true);
  }
  if (v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new HttpError(400, "", true);
  const body = v as Record<string, unknown>;
  const str = (k: string) => {
    if (body[k] === undefined || body[k] === null) return undefined;
    if (typeof body[k] !== "string") throw new HttpError(400, "", true);
    return body[k] as string;
  };
  let envVars: Record<string, string> | undefined;
  if (body.envVars !== undefined && body.envVars !== null) {
    if (typeof body.envVars !== "object" || Array.isArray(body.envVars)) throw new HttpError(400, "", true);
    envVars = {};
    for (const [k, val] of Object.entries(body.envVars as Record<string, unknown>)) {
      if (typeof val !== "string") throw new HttpError(400, "", true);
      envVars[k] = val;
    }
  }
  const accessToken = str("accessToken");
  // E2B's SecureToken refuses empty tokens and backslashes while decoding: a bare 400.
  if (accessToken !== undefined && (accessToken === "" || accessToken.includes("\\"))) throw new HttpError(400, "", true);
  const timestamp = str("timestamp");
  // Go's time.Time accepts RFC 3339 only; Date.parse alone would also take "2024-01-01" or "Jan 1".
  if (timestamp !== undefined && (!RFC3339.test(timestamp) || Number.isNaN(Date.parse(timestamp)))) throw new HttpError(400, "", true);
  return { envVars, accessToken, timestamp, defaultUser: str("defaultUser"), defaultWorkdir: str("defaultWorkdir") };
}

/** GET /health, GET /metrics, POST /init, GET /envs and the orchestrator-only endpoints. */
export function controlRoutes(ctx: DaemonContext): Record<string, RouteHandler> {
  const { state, log } = ctx;
  const cpu = new CpuPercent();
  let initQueue: Promise<void> = Promise.resolve();

  const notImplemented = (what: string): RouteHandler => (_req, res) =>
    sendJsonError(res, 501, `${what} is not implemented by envd-ts: it manages no cgroup freezer or filesystem freeze`);

  return {
    "GET /health": (_req, res) => sendEmpty(res, 204, { "cache-control": "no-store" }),

    "GET /metrics": (_req, res) => {
      try {
        const mem = readMemory();
        const disk = readDisk("/");
        sendJson(
          res,
          200,
          {
            ts: Math.floor(Date.now() / 1000),
            cpu_count: cpuCount(),
            cpu_used_pct: Math.round(cpu.sample() * 100) / 100,
            mem_total_mib: Math.floor(mem.total / MIB),
            mem_used_mib: Math.floor(mem.used / MIB),
            mem_total: mem.total,
            mem_used: mem.used,
            mem_cache: mem.cached,
            disk_used: disk.used,
            disk_total: disk.total,
          },
          { "cache-control": "no-store" },
        );
      } catch (err) {
        log.error({ err }, "metrics failed");
        sendJsonError(res, 500, `error reading metrics: ${(err as Error)?.message ?? String(err)}`);
      }
    },

    "GET /envs": (_req, res) => sendJson(res, 200, Object.fromEntries(state.envVars()), { "cache-control": "no-store" }),

    "POST /init": async (req, res) => {
      res.setHeader("x-envd-version", ENVD_COMPAT_VERSION);
      const raw = await readBody(req, MAX_INIT_BODY);
      const body = parseInitBody(raw);
      // /init requests are applied one at a time, as envd's semaphore does.
      const run = initQueue.then(() => applyInit(body));
      initQueue = run.catch(() => {});
      await run;
      sendEmpty(res, 204, { "cache-control": "no-store" });
    },

    "POST /freeze": notImplemented("POST /freeze"),
    "POST /unfreeze": notImplemented("POST /unfreeze"),
    "POST /fsfreeze": notImplemented("POST /fsfreeze"),
    "POST /fsthaw": notImplemented("POST /fsthaw"),
    "POST /collapse": notImplemented("POST /collapse"),
    "POST /upgrade": notImplemented("POST /upgrade (live self-upgrade)"),
  };

  async function applyInit(body: InitBody): Promise<void> {
    // Outside Firecracker there is no MMDS hash: once a token is set, only its holder may re-init.
    if (state.accessToken.isSet() && !state.accessToken.matches(body.accessToken)) {
      throw new HttpError(401, body.accessToken === undefined ? "access token reset not authorized" : "access token validation failed", true);
    }
    const before = state.snapshot();
    if (body.timestamp !== undefined) {
      const ts = Date.parse(body.timestamp);
      if (state.lastInitTimestampMs !== undefined && ts <= state.lastInitTimestampMs) {
        log.info({ timestamp: body.timestamp }, "stale /init ignored");
        return;
      }
      state.lastInitTimestampMs = ts;
      if (ctx.config.clockSync) syncClock(ts, log);
    }
    if (body.envVars !== undefined) state.userEnv = new Map(Object.entries(body.envVars));
    state.accessToken.set(body.accessToken);
    if (body.defaultUser) state.defaultUser = body.defaultUser;
    if (body.defaultWorkdir) state.defaultWorkdir = body.defaultWorkdir;
    state.initialized = true;
    // Durable before the 204: a daemon killed right after still requires the token it accepted.
    // A change that cannot be stored is not made, so the orchestrator's retry is not "stale".
    try {
      await state.initStore?.save(state);
    } catch (err) {
      state.putBack(before);
      log.error({ err }, "cannot store the /init state");
      throw new HttpError(500, `error storing the init state: ${(err as Error).message}`, true);
    }
    log.info({ defaultUser: state.defaultUser, envVars: state.userEnv.size, token: state.accessToken.isSet() }, "initialized");
  }
}

/** E2B's envd sets the clock when it is more than this behind /init's timestamp... */
const CLOCK_BEHIND_MS = 50;
/** ...or more than this ahead of it. */
const CLOCK_AHEAD_MS = 5000;

/**
 * A sandbox resumed from a snapshot wakes with the clock of the moment it was paused; the
 * orchestrator's /init carries the real time. Failure (no CAP_SYS_TIME) is logged, never an error
 * for the caller, as in E2B's envd.
 */
function syncClock(timestampMs: number, log: DaemonContext["log"]): void {
  const now = Date.now();
  if (now >= timestampMs - CLOCK_BEHIND_MS && now <= timestampMs + CLOCK_AHEAD_MS) return;
  try {
    (native() as unknown as { processSetClock(ms: number): void }).processSetClock(timestampMs);
    log.info({ from: new Date(now).toISOString(), to: new Date(timestampMs).toISOString() }, "system clock set from /init");
  } catch (err) {
    log.error({ err: (err as Error).message }, "cannot set the system clock from /init");
  }
}

/** The first line of /etc/os-release PRETTY_NAME, or "". */
export function osPrettyName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"));
    return m?.[1] ?? "";
  } catch {
    return "";
  }
}
