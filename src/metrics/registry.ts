// registry.ts (metrics): an in-process Prometheus registry (counters, scrape-time gauges, histograms) and its
// text exposition format 0.0.4. Knows nothing of jobs, HTTP or the store: callers name the metrics.
import { checkBuckets, checkLabelNames, checkLabels, checkName, escapeHelp, formatNumber, gaugeLines, matches, renderLabels } from "./format.ts";

export type Labels = Record<string, string>;

export interface Counter {
  /** Adds `by` (finite, >= 0) to the series named by `labels`. Throws on a label set that does not match. */
  inc(labels?: Labels, by?: number): void;
  /** The series for `labels`, bound once so a hot path skips the lookup: `c.labels({ type }).inc()`. */
  labels(labels: Labels): CounterSeries;
  /** Sum of every series whose labels include all of `filter` (no filter: the total over all series). */
  get(filter?: Labels): number;
}

export interface Histogram {
  /** Counts `value` in its bucket (bounds are inclusive: `le`). NaN is ignored. */
  observe(value: number, labels?: Labels): void;
  labels(labels: Labels): HistogramSeries;
}

export type GaugeReading = number | Array<{ labels: Labels; value: number }>;

export interface Metrics {
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
  /** `read` runs at every scrape; if it throws (or returns junk) the gauge is left out of that scrape. */
  gauge(name: string, help: string, read: () => GaugeReading): void;
  histogram(name: string, help: string, buckets: readonly number[], labelNames?: readonly string[]): Histogram;
  /** A counter's value by name, as `Counter.get`. Throws if no counter has that name. */
  counterValue(name: string, filter?: Labels): number;
  render(): string;
  readonly contentType: "text/plain; version=0.0.4; charset=utf-8";
}

export interface MetricsDeps {
  /** Told when a gauge's read function fails during a scrape (e.g. to log it). */
  onReadError?: (name: string, err: unknown) => void;
}

export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];


/** One counter series: the hot data structure behind `inc`. */
export class CounterSeries {
  value = 0;
  constructor(readonly labelValues: readonly string[], readonly labelText: string) {}
  inc(by = 1): void {
    if (!(by >= 0 && by < Infinity)) throw new RangeError(`counter increment must be finite and >= 0, got ${by}`);
    this.value += by;
  }
}

/** One histogram series: per-bucket (not cumulative) counts, the last slot being the +Inf overflow. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    private readonly bounds: Float64Array,
    readonly labelValues: readonly string[],
    readonly labelText: string,
    readonly bucketPrefix: string,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    if (value !== value) return;
    const bounds = this.bounds;
    const n = bounds.length;
    let i = 0;
    while (i < n && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export function createMetrics(deps: MetricsDeps = {}): Metrics {
  const families: Array<(out: string[]) => void> = [];
  const taken = new Set<string>();
  const counters = new Map<string, Counter>();

  function claim(names: string[]): void {
    for (const n of names) if (taken.has(n)) throw new Error(`metric ${n} is already registered`);
    for (const n of names) taken.add(n);
  }

  function header(out: string[], name: string, help: string, type: string): void {
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  return {
    contentType: "text/plain; version=0.0.4; charset=utf-8",

    counter(name, help, labelNames = []) {
      checkName(name);
      if (!name.endsWith("_total")) throw new Error(`counter ${name} must be named *_total`);
      checkLabelNames(name, labelNames);
      claim([name]);
      const table = createSeriesTable(name, labelNames, (values, text) => new CounterSeries(values, text));
      families.push((out) => {
        header(out, name, help, "counter");
        for (const s of table.all) out.push(`${name}${s.labelText} ${formatNumber(s.value)}`);
      });
      const counter: Counter = {
        inc: (labels, by = 1) => table.get(labels).inc(by),
        labels: (labels) => table.get(labels),
        get: (filter) => {
          let sum = 0;
          for (const s of table.all) if (matches(labelNames, s.labelValues, filter)) sum += s.value;
          return sum;
        },
      };
      counters.set(name, counter);
      return counter;
    },

    gauge(name, help, read) {
      checkName(name);
      claim([name]);
      families.push((out) => {
        let lines: string[];
        try {
          lines = gaugeLines(name, read());
        } catch (err) {
          deps.onReadError?.(name, err);
          return;
        }
        header(out, name, help, "gauge");
        for (const line of lines) out.push(line);
      });
    },

    histogram(name, help, buckets, labelNames = []) {
      checkName(name);
      checkLabelNames(name, labelNames);
      if (labelNames.includes("le")) throw new Error(`histogram ${name} cannot use the label name "le"`);
      const bounds = checkBuckets(name, buckets);
      claim([name, `${name}_bucket`, `${name}_sum`, `${name}_count`]);
      const les = Array.from(bounds, formatNumber);
      const table = createSeriesTable(
        name,
        labelNames,
        (values, text) => new HistogramSeries(bounds, values, text, text === "" ? "" : text.slice(1, -1) + ","),
      );
      families.push((out) => {
        header(out, name, help, "histogram");
        for (const s of table.all) {
          let cumulative = 0;
          for (let i = 0; i < les.length; i++) {
            cumulative += s.counts[i]!;
            out.push(`${name}_bucket{${s.bucketPrefix}le="${les[i]}"} ${formatNumber(cumulative)}`);
          }
          out.push(`${name}_bucket{${s.bucketPrefix}le="+Inf"} ${formatNumber(s.count)}`);
          out.push(`${name}_sum${s.labelText} ${formatNumber(s.sum)}`);
          out.push(`${name}_count${s.labelText} ${formatNumber(s.count)}`);
        }
      });
      return {
        observe: (value, labels) => table.get(labels).observe(value),
        labels: (labels) => table.get(labels),
      };
    },

    counterValue(name, filter) {
      const counter = counters.get(name);
      if (!counter) throw new Error(`no counter named ${name}`);
      return counter.get(filter);
    },

    render() {
      const out: string[] = [];
      for (const family of families) family(out);
      return out.length === 0 ? "" : out.join("\n") + "\n";
    },
  };
}

/**
 * Series of one metric, found by label values through nested maps (one level per label name), so
 * a lookup builds no key string. An unlabelled metric has its one series from the start, so it
 * prints zeros before its first use. Labels are checked in full when a series is created; a call
 * that hits an existing series is not checked for extra keys.
 */
function createSeriesTable<S>(
  metric: string,
  labelNames: readonly string[],
  make: (values: string[], labelText: string) => S,
): { get(labels: Labels | undefined): S; all: S[] } {
  const all: S[] = [];
  const depth = labelNames.length;

  if (depth === 0) {
    const only = make([], "");
    all.push(only);
    return {
      all,
      get(labels) {
        if (labels !== undefined) for (const key in labels) throw new Error(`${metric} has no label ${key}`);
        return only;
      },
    };
  }

  const root = new Map<string, unknown>();
  function create(labels: Labels | undefined): S {
    const values = checkLabels(metric, labelNames, labels);
    let node = root;
    for (let i = 0; i < depth - 1; i++) {
      let next = node.get(values[i]!) as Map<string, unknown> | undefined;
      if (!next) node.set(values[i]!, (next = new Map()));
      node = next;
    }
    const series = make(values, renderLabels(labelNames, values));
    node.set(values[depth - 1]!, series);
    all.push(series);
    return series;
  }

  return {
    all,
    get(labels) {
      if (labels === undefined) return create(labels);
      let node: unknown = root;
      for (let i = 0; i < depth; i++) {
        node = (node as Map<string, unknown>).get(labels[labelNames[i]!]!);
        if (node === undefined) return create(labels);
      }
      return node as S;
    },
  };
}

