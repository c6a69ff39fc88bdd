import { pino, type Logger } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger };

/** The daemon's one logger: JSON lines on stdout. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { svc: "envd" }, timestamp: pino.stdTimeFunctions.isoTime });
}
