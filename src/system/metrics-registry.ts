/** Label names to values for one sample. */
export type Labels = Record<string, string>;

/** One value of a metric family, with its labels. */
export interface Sample {
  labels: Labels;
  value: number;
}

/** What a gauge or counter callback returns at scrape time: one value, or one per label set. */
export type SampleSource = () => number | Sample[];

/** Prometheus metric types this registry produces. */
export type MetricType = "counter" | "gauge" | "histogram";

/** One metric family as collected for a scrape. Histogram samples carry their own suffixes. */
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  /** For histograms: `name` is the suffixed series name (`_bucket`, `_sum`, `_count`). */
  samples: Array<Sample & { name: string }>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Latency buckets in seconds, from 1 ms to a minute (streams can stay open far longer). */
export const DEFAULT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function keyOf(labelNames: readonly string[], labels: Labels): string {
  return labelNames.map((n) => labels[n] ?? "").join("\u0000");
}

function labelsOf(labelNames: readonly string[], key: string): Labels {
  const values = key.split("\u0000");
  const out: Labels = {};
  labelNames.forEach((n, i) => (out[n] = values[i] ?? ""));
  return out;
}

/** A monotonically increasing count kept in the daemon, keyed by its label values. */
export class Counter {
  private readonly values = new Map<string, number>();

  constructor(readonly labelNames: readonly string[]) {}

  /** Adds `by` (default 1) to the series with these labels. */
  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(this.labelNames, labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  /** The current value of one series (0 when it was never incremented). */
  get(labels: Labels = {}): number {
    return this.values.get(keyOf(this.labelNames, labels)) ?? 0;
  }

  /** Every series with its current value. */
  samples(): Sample[] {
    return [...this.values].map(([key, value]) => ({ labels: labelsOf(this.labelNames, key), value }));
  }
}

interface HistogramSeries {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations (latencies) bucketed per label set, as Prometheus histograms are. */
export class Histogram {
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}

  /** Records one observation for the series with these labels. */
  observe(labels: Labels, value: number): void {
    const key = keyOf(this.labelNames, labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 }));
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** The `_bucket` (cumulative, ending with le="+Inf"), `_sum` and `_count` series of every label set. */
  samples(name: string): Array<Sample & { name: string }> {
    const out: Array<Sample & { name: string }> = [];
    for (const [key, s] of this.series) {
      const labels = labelsOf(this.labelNames, key);
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += s.counts[i]!;
        out.push({ name: `${name}_bucket`, labels: { ...labels, le: String(b) }, value: cumulative });
      });
      out.push({ name: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: s.count });
      out.push({ name: `${name}_sum`, labels, value: s.sum });
      out.push({ name: `${name}_count`, labels, value: s.count });
    }
    return out;
  }
}

type Entry =
  | { kind: "counter"; help: string; metric: Counter }
  | { kind: "histogram"; help: string; metric: Histogram }
  | { kind: "callback"; help: string; type: "counter" | "gauge"; read: SampleSource };

/**
 * The daemon's metrics: counters and histograms it updates as requests run, and gauges
 * read from the registries that own the state (processes, proxies, watchers) at scrape time,
 * so those registries pay nothing between scrapes.
 */
export class MetricsRegistry {
  private readonly entries = new Map<string, Entry>();

  /** A counter the caller increments. Asking twice for one name returns the same counter. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    const existing = this.entries.get(name);
    if (existing?.kind === "counter") return existing.metric;
    check(name, labelNames);
    const metric = new Counter(labelNames);
    this.entries.set(name, { kind: "counter", help, metric });
    return metric;
  }

  /** A histogram the caller observes into. Asking twice for one name returns the same one. */
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_BUCKETS): Histogram {
    const existing = this.entries.get(name);
    if (existing?.kind === "histogram") return existing.metric;
    check(name, labelNames);
    const metric = new Histogram(labelNames, buckets);
    this.entries.set(name, { kind: "histogram", help, metric });
    return metric;
  }

  /**
   * A gauge whose value is read when scraped, e.g. `registerGauge("envd_processes_active",
   * "Running processes", () => registry.size)`. Registering a name again replaces the callback
   * (a capability created anew replaces the old one); the returned function removes it.
   */
  registerGauge(name: string, help: string, read: SampleSource): () => void {
    return this.register(name, help, "gauge", read);
  }

  /** Like {@link registerGauge}, for a cumulative total the owner already keeps (bytes relayed). */
  registerCounter(name: string, help: string, read: SampleSource): () => void {
    return this.register(name, help, "counter", read);
  }

  private register(name: string, help: string, type: "counter" | "gauge", read: SampleSource): () => void {
    check(name, []);
    const entry: Entry = { kind: "callback", help, type, read };
    this.entries.set(name, entry);
    return () => {
      if (this.entries.get(name) === entry) this.entries.delete(name);
    };
  }

  /** Every family with its current samples, sorted by name. A failing callback is left out. */
  collect(): MetricFamily[] {
    const out: MetricFamily[] = [];
    for (const [name, e] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (e.kind === "counter") out.push({ name, help: e.help, type: "counter", samples: e.metric.samples().map((s) => ({ ...s, name })) });
      else if (e.kind === "histogram") out.push({ name, help: e.help, type: "histogram", samples: e.metric.samples(name) });
      else {
        let read: number | Sample[];
        try {
          read = e.read();
        } catch {
          continue;
        }
        const samples = typeof read === "number" ? [{ labels: {}, value: read }] : read;
        out.push({ name, help: e.help, type: e.type, samples: samples.map((s) => ({ ...s, name })) });
      }
    }
    return out;
  }
}

function check(name: string, labelNames: readonly string[]): void {
  if (!NAME.test(name)) throw new Error(`invalid metric name '${name}'`);
  for (const l of labelNames) if (!LABEL.test(l) || l.startsWith("__") || l === "le") throw new Error(`invalid label name '${l}' on ${name}`);
}

/**
 * The daemon's one registry. Capabilities register their gauges here, for example
 * `metrics.registerGauge("envd_processes_active", "...", () => registry.running())`.
 */
export const metrics = new MetricsRegistry();
