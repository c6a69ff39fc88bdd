// First: V8 young-generation cap, then polyfills that libraries look for when they load.
import "./system/young-generation.js";
import "./polyfills/uint8array-base64.js";
import { setMaxListeners } from "node:events";
import { mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { ConfigError, parseCli } from "./config.js";
import { createLogger } from "./log.js";
import { DaemonState } from "./state.js";
import type { DaemonContext } from "./daemon-context.js";
import { startServer, type Capability } from "./server.js";
import { controlRoutes } from "./system/control-routes.js";
import { processCapability } from "./process/index.js";
import { filesystemCapability } from "./filesystem/index.js";
import { proxyCapability } from "./proxy/index.js";
import { prometheusCapability } from "./system/prometheus.js";
import { reflectionCapability } from "./reflection/index.js";
import { openApiCapability } from "./openapi/index.js";
import { probeHealth } from "./system/probe.js";
import { terminalCapability } from "./terminal/index.js";
import { ChildReaper } from "./system/child-reaper.js";
import { isInit, terminateRemaining } from "./system/pid1.js";
import { warmUpLazyModules } from "./system/warm-up.js";
import { lookupUser } from "./users/passwd.js";
import { hideAccessToken } from "./auth/hide-token.js";
import { cleanUpAfterPreviousDaemons, removeInterruptedTemps, restorePersistentState, UntrustedStateError } from "./persist/index.js";

/** The subcommands src/cli/index.ts serves; test/cli.test.ts checks the two lists agree. */
const CLI_COMMANDS = new Set(["help", "ps", "logs", "exec", "kill", "top", "proxy", "ports"]);

function writeSandboxMarkers(runDir: string, isNotFc: boolean): void {
  try {
    mkdirSync(runDir, { recursive: true, mode: 0o755 });
    const file = `${runDir}/.E2B_SANDBOX`;
    try {
      chmodSync(file, 0o644);
    } catch {
      /* not there yet */
    }
    writeFileSync(file, isNotFc ? "false" : "true", { mode: 0o444 });
    chmodSync(file, 0o444);
  } catch {
    /* best effort, as in envd: non-root daemons cannot write /run */
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  // `envd ps`, `envd exec ...`: subcommands for people inside the sandbox (src/cli), loaded
  // only then; anything else is the daemon's command line.
  if (CLI_COMMANDS.has(argv[0] ?? "")) {
    const { runCli } = await import("./cli/index.js");
    process.exit(await runCli(argv));
  }
  let parsed;
  try {
    parsed = parseCli(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`envd: ${err.message}\nRun 'envd --help' for the flags.\n`);
      process.exit(2);
    }
    throw err;
  }
  if (parsed.kind !== "run") {
    // `envd --help | head` closes the pipe early: that is not an error worth a stack trace.
    process.stdout.on("error", () => {});
    process.stdout.write(parsed.text);
    return;
  }
  const config = parsed.config;
  if (config.probe) {
    const { healthy, detail } = await probeHealth(config.port, config.listenAddress);
    process.stdout.write(`${healthy ? "healthy" : "unhealthy"}: ${detail}\n`);
    process.exit(healthy ? 0 : 1);
  }
  const log = createLogger(config.logLevel);
  for (const problem of hideAccessToken(process.argv, process.env)) log.error(problem);
  // Orphans of our commands (all of a namespace's, as PID 1) are reaped here; see child-reaper.ts.
  const reaper = ChildReaper.start(log, { subreaper: true });
  // A signal before the server is up is acted on once it is: as PID 1, one without a handler is lost.
  let earlySignal: string | undefined;
  const onEarlySignal = (signal: string) => (earlySignal ??= signal);
  process.on("SIGTERM", onEarlySignal);
  process.on("SIGINT", onEarlySignal);
  const shutdown = new AbortController();
  // Each RPC in flight links its own signal to this one (connect-es) and unlinks when it ends:
  // thousands at once are normal, not a leak (leaks are tested through the daemon's gauges).
  setMaxListeners(0, shutdown.signal);
  const ctx: DaemonContext = { config, state: new DaemonState(config), log, shutdownSignal: shutdown.signal };
  writeSandboxMarkers(config.runDir, config.isNotFc);
  let stateDir;
  try {
    stateDir = restorePersistentState(ctx);
  } catch (err) {
    if (!(err instanceof UntrustedStateError)) throw err;
    log.fatal({ err: err.message }, "cannot restore the daemon state");
    process.stderr.write(`envd: ${err.message}\n`);
    process.exit(1);
  }

  // Read now, so there are good tables to fall back on when a later re-read of /etc/passwd
  // fails for want of descriptors (see users/passwd.ts).
  try {
    lookupUser(config.defaultUser);
  } catch (err) {
    log.warn({ err: (err as Error).message }, "cannot read the user database");
  }
  const processes = processCapability(ctx);
  const capabilities: Capability[] = [
    {
      rest: controlRoutes(ctx),
      lazyRpc: [
        {
          typeNames: ["envdts.v1.System"],
          load: async () => {
            const { registerSystemService } = await import("./system/system-service.js");
            return (router) =>
              registerSystemService(router, ctx, {
                closing: () => processes.registry.isClosing,
                liveCount: () => processes.registry.liveProcesses().length,
                cgroupVersion: processes.cgroups.version,
                cgroupDescription: () => processes.cgroups.describe(),
                cgroupWarnings: () => processes.cgroups.startupWarnings(),
              });
          },
        },
      ],
    },
    processes,
    filesystemCapability(ctx),
    proxyCapability(ctx),
    prometheusCapability(),
    reflectionCapability(),
    openApiCapability(),
    terminalCapability(ctx, processes),
  ];

  process.on("uncaughtException", (err) => log.error({ err }, "uncaught exception (contained)"));
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection (contained)"));

  let server;
  try {
    server = await startServer(ctx, capabilities, shutdown);
  } catch (err) {
    log.fatal({ err }, "cannot listen");
    process.exit(1);
  }
  log.info({ port: server.port, address: server.address, pid: process.pid, init: isInit() || undefined }, "listening");
  warmUpLazyModules(log, server.loadLazyServices);
  if (stateDir) void cleanUpAfterPreviousDaemons(ctx, stateDir);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    server
      .shutdown()
      .then(() => removeInterruptedTemps(ctx))
      .then(() => terminateRemaining(reaper, log))
      .then(() => {
        log.info("stopped");
        process.exit(0);
      })
      .catch((err) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  process.off("SIGTERM", onEarlySignal);
  process.off("SIGINT", onEarlySignal);
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (earlySignal) stop(earlySignal);
}

void main();
