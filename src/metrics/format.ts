// format.ts (metrics): the Prometheus text exposition format 0.0.4's rules: metric and label names,
// escaping, number formatting and the checks that keep a registry's output valid. No state.
import type { GaugeReading, Labels } from "./registry.ts";

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export function checkLabels(metric: string, labelNames: readonly string[], labels: Labels | undefined): string[] {
  const want = labelNames.join(", ");
  if (labels === undefined) throw new Error(`${metric} needs labels ${want}`);
  const keys = Object.keys(labels);
  const values = labelNames.map((n) => labels[n]);
  if (keys.length !== labelNames.length || values.some((v) => typeof v !== "string")) {
    throw new Error(`${metric} needs labels ${want} (string values), got ${keys.join(", ") || "none"}`);
  }
  return values as string[];
}

export function matches(labelNames: readonly string[], values: readonly string[], filter: Labels | undefined): boolean {
  if (filter === undefined) return true;
  for (const key in filter) {
    const i = labelNames.indexOf(key);
    if (i < 0 || values[i] !== filter[key]) return false;
  }
  return true;
}

export function gaugeLines(name: string, reading: GaugeReading): string[] {
  if (typeof reading === "number") return [`${name} ${formatGauge(reading)}`];
  if (!Array.isArray(reading)) throw new TypeError(`gauge ${name} read a ${typeof reading}, not a number or array`);
  return reading.map(({ labels, value }) => {
    if (typeof value !== "number") throw new TypeError(`gauge ${name} read a ${typeof value} value`);
    const names = Object.keys(labels);
    checkLabelNames(name, names);
    const values = names.map((n) => labels[n]);
    if (values.some((v) => typeof v !== "string")) throw new TypeError(`gauge ${name} read a non-string label value`);
    return `${name}${renderLabels(names, values as string[])} ${formatGauge(value)}`;
  });
}

/** Gauges here count things, so a negative reading (a race between two counts) prints as 0. */
export function formatGauge(value: number): string {
  return formatNumber(value < 0 ? 0 : value);
}

export function renderLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`).join(",")}}`;
}

/** A sample value as Prometheus parses it: plain integers, JS exponent form, NaN, +Inf, -Inf. */
export function formatNumber(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value); // NaN prints "NaN"; -0 prints "0"
}

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

export function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

export function checkName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
}

export function checkLabelNames(metric: string, labelNames: readonly string[]): void {
  for (const n of labelNames) {
    if (!LABEL_NAME.test(n) || n.startsWith("__")) throw new Error(`${metric}: invalid label name ${JSON.stringify(n)}`);
  }
  if (new Set(labelNames).size !== labelNames.length) throw new Error(`${metric}: repeated label name`);
}

export function checkBuckets(name: string, buckets: readonly number[]): Float64Array {
  const bounds = buckets.at(-1) === Infinity ? buckets.slice(0, -1) : buckets;
  for (let i = 0; i < bounds.length; i++) {
    const b = bounds[i]!;
    if (!Number.isFinite(b) || (i > 0 && !(b > bounds[i - 1]!))) {
      throw new Error(`histogram ${name}: buckets must be finite and strictly increasing`);
    }
  }
  return Float64Array.from(bounds);
}
