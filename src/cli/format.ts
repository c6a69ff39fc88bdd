import type { ProcessExit, ProcessInfo } from "../client/index.js";
import { formatBytes } from "../client/units.js";

export { formatBytes };

/** Left-aligned columns, the last one unpadded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** 93784000 ms → "1d2h", 61000 → "1m1s", 1500 → "1.5s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** "exited 0", "signaled SIGTERM", "oom_killed", "timed_out" ... */
export function outcomeText(exit: ProcessExit | undefined): string {
  if (!exit) return "-";
  if (exit.outcome === "exited" || exit.outcome === "failed_to_start") return `${exit.outcome} ${exit.exitCode}`;
  if (exit.outcome === "signaled") return `signaled ${exit.signalName || exit.signal}`;
  return exit.outcome;
}

/** The shell's convention: the exit code, or 128 + the signal that ended the run. */
export function shellStatus(exit: ProcessExit): number {
  if (exit.exitCode >= 0 && exit.signal === 0) return exit.exitCode & 0xff;
  if (exit.signal > 0) return 128 + exit.signal;
  return 1;
}

/** The command line as one string, quoted where a shell would need it. */
export function commandLine(p: Pick<ProcessInfo, "cmd" | "args">): string {
  return [p.cmd, ...p.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** A process as JSON: Dates as ISO text, the raw message left out. */
export function processJson(p: ProcessInfo): Record<string, unknown> {
  const { raw: _raw, execution, ...rest } = p;
  return { ...rest, enforcement: execution?.enforcement ?? [] };
}

/** JSON with bigint as numbers (counters never reach 2^53 in practice) and byte arrays as text. */
export function json(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : v));
}
