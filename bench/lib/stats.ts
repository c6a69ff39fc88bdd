/** One benchmark figure: daemon ÷ baseline, as a median over interleaved trials. */
export interface Figure {
  name: string;
  client: string;
  /** Median of the per-trial ratios daemon ÷ baseline. */
  ratio: number;
  p90: number;
  target: { op: "<=" | ">="; value: number };
  pass: boolean;
  /** Medians of the raw values, for the record. */
  daemon: number;
  baseline: number;
  unit: string;
  trials: number;
  /**
   * The same figure for the minimal Node server with the same client (median ratio
   * floor ÷ baseline), where one exists: what any Node daemon reaches, for judging
   * how much of a gap is the daemon's and how much the runtime's and client's.
   */
  floor?: number;
  /** Every trial's raw values, in run order (the JSON keeps them for a closer look). */
  samples?: { baseline: number[]; daemon: number[]; floor?: number[] };
  note?: string;
}

/** The q-quantile (0..1) of `values`, linearly interpolated; NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** The median of `v`. */
export const median = (v: number[]) => quantile(v, 0.5);

/**
 * Runs baseline and daemon trials interleaved (alternating which goes first) and
 * returns the figure. For "higher is better" figures (throughput), p90 is the 10th
 * percentile of ratios, i.e. the pessimistic side, so both columns read the same way.
 */
export async function interleaved(opts: {
  name: string;
  client: string;
  unit: string;
  trials: number;
  target: { op: "<=" | ">="; value: number };
  /** One arm's run (with `rounds`, its part `round` of a trial: the trial's value is their sum). */
  baseline: (round: number) => Promise<number>;
  daemon: (round: number) => Promise<number>;
  /** The minimal Node server doing the same job with the same client (optional third arm). */
  floor?: (round: number) => Promise<number>;
  /**
   * Splits each trial into this many rounds that alternate between the arms, so both see the
   * same machine weather (a disk's journal commits and writeback come in bursts of seconds).
   */
  rounds?: number;
  warmup?: number;
  note?: string;
}): Promise<Figure> {
  const arms: ((round: number) => Promise<number>)[] = [opts.baseline, opts.daemon, ...(opts.floor ? [opts.floor] : [])];
  const rounds = opts.rounds ?? 1;
  for (let i = 0; i < (opts.warmup ?? 1); i++) for (let r = 0; r < rounds; r++) for (const arm of arms) await arm(r);
  const ratios: number[] = [];
  const floorRatios: number[] = [];
  const b: number[] = [];
  const d: number[] = [];
  const fl: number[] = [];
  for (let i = 0; i < opts.trials; i++) {
    // Rotate which arm goes first, so drift and warm caches favour none.
    const values = new Array<number>(arms.length).fill(0);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < arms.length; k++) {
        const arm = (k + i + r) % arms.length;
        values[arm] += await arms[arm]!(r);
      }
    }
    b.push(values[0]!);
    d.push(values[1]!);
    ratios.push(values[1]! / values[0]!);
    if (opts.floor) {
      fl.push(values[2]!);
      floorRatios.push(values[2]! / values[0]!);
    }
  }
  const ratio = median(ratios);
  const p90 = opts.target.op === "<=" ? quantile(ratios, 0.9) : quantile(ratios, 0.1);
  const pass = opts.target.op === "<=" ? ratio <= opts.target.value : ratio >= opts.target.value;
  return {
    name: opts.name,
    client: opts.client,
    ratio,
    p90,
    target: opts.target,
    pass,
    daemon: median(d),
    baseline: median(b),
    unit: opts.unit,
    trials: opts.trials,
    floor: opts.floor ? median(floorRatios) : undefined,
    samples: { baseline: b, daemon: d, ...(opts.floor ? { floor: fl } : {}) },
    note: opts.note,
  };
}

/** Wall time of `fn` in milliseconds. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/**
 * The figures as a Markdown table: ratio (daemon ÷ baseline), its p90, the target,
 * the raw medians, and the floor (minimal Node server ÷ baseline) where measured.
 */
export function formatTable(figures: Figure[]): string {
  const rows = [["figure", "client", "ratio", "p90", "target", "ok", "daemon", "baseline", "unit", "floor"]];
  for (const f of figures) {
    rows.push([f.name, f.client, f.ratio.toFixed(2), f.p90.toFixed(2), `${f.target.op} ${f.target.value}`, f.pass ? "yes" : "NO", round(f.daemon), round(f.baseline), f.unit, f.floor === undefined ? "" : f.floor.toFixed(2)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => "| " + r.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  return [line(rows[0]!), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.slice(1).map(line)].join("\n");
}

function round(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}
