import { pino, type Logger } from "pino";
import type { LogLevel } from "./config.js";
import { LogSink } from "./log-sink.js";

export type { Logger };

/** The daemon's one logger: JSON lines on stdout, never blocking the daemon (see LogSink). */
export function createLogger(level: LogLevel): Logger {
  // Opening process.stdout makes a pipe or socket on fd 1 non-blocking (libuv), so a reader
  // that stopped reading gives EAGAIN instead of stalling us; its errors (EPIPE) are the sink's business.
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
  const sink = new LogSink(1);
  process.on("exit", () => sink.flushSync());
  return pino({ level, base: { svc: "envd" }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
}
