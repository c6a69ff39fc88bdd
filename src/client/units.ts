/** Parses "64M", "1.5G", "512k" or a plain number of bytes (K, M, G, T are powers of 1024). */
export function parseBytes(value: number | string): number {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`'${value}' is not a byte count`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(value);
  if (!m) throw new RangeError(`'${value}' is not a size (bytes, or a number with K, M, G or T)`);
  const n = Math.round(Number(m[1]) * 1024 ** " kmgt".indexOf((m[2] || " ").toLowerCase()));
  if (!Number.isSafeInteger(n)) throw new RangeError(`'${value}' is out of range`);
  return n;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "10s", "500ms", "2m", "1h" or a plain number of milliseconds. */
export function parseDurationMs(value: number | string): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`'${value}' is not a duration`);
    return Math.round(value);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(value);
  if (!m) throw new RangeError(`'${value}' is not a duration (a number with ms, s, m or h)`);
  return Math.round(Number(m[1]) * DURATION_UNITS[(m[2] ?? "ms").toLowerCase()]!);
}

/** 268435456 → "256.0M": for tables. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  const units = ["K", "M", "G", "T"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)}${units[i]}`;
}
