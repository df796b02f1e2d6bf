#!/usr/bin/env bun
// ab.ts (bench): one benchmark row for two or more checkouts, interleaved round by round, so a
// before/after comparison shares the machine's drift. Each checkout uses its own bench/ code and its
// own dist/jobqueue (build it there first).
// `bun bench/ab.ts /path/to/before /path/to/after [--row e2e|submit|batch|latency] [--store postgres|sqlite] [--rounds 4] [--workers 32] [--seconds 8] [--rate 1000]`
//   e2e      row 4's drain: 50,000 preloaded noop jobs at --workers (jobs/s)
//   submit   row 1: single-job HTTP submits with wrk for --seconds (jobs/s)
//   batch    row 2: 1,000-job HTTP submits with wrk for --seconds (jobs/s)
//   latency  row 5: add→start on the binary at --rate jobs/s, 1,000 by default (p50 / p99 ms)
// on PostgreSQL, or with --store sqlite on the embedded store (row 9's rows).
import { resolve } from "node:path";

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1]! : fallback;
};
const row = opt("--row", "e2e");
const rounds = Number(opt("--rounds", "4"));
const workers = Number(opt("--workers", "32"));
const seconds = Number(opt("--seconds", "8"));
const rate = Number(opt("--rate", "1000"));
const store = opt("--store", "postgres") as "postgres" | "sqlite";
if (args.length < 2 || !["e2e", "submit", "batch", "latency"].includes(row) || !["postgres", "sqlite"].includes(store)) {
  throw new Error("usage: bun bench/ab.ts <checkout> <checkout> [...] [--row e2e|submit|batch|latency] [--store postgres|sqlite] [--rounds N] [--workers N] [--seconds N] [--rate N]");
}

/** One measurement of the row with a checkout's bench code: the figures to print, the first one compared. */
type Measure = () => Promise<number[]>;
async function measureOf(dir: string): Promise<Measure> {
  const at = resolve(dir);
  if (row === "e2e") {
    const { jobqueueE2e } = await import(`${at}/bench/e2e.ts`);
    return async () => [Math.round((await jobqueueE2e(store, workers)).jobsPerS)];
  }
  if (row === "submit" || row === "batch") {
    const { jobqueueSubmit } = await import(`${at}/bench/submit.ts`);
    return async () => [Math.round((await jobqueueSubmit(store, row === "batch", seconds)).jobsPerS)];
  }
  const { binaryLatency } = await import(`${at}/bench/latency.ts`);
  return async () => {
    const s = await binaryLatency(store, rate);
    return [s.p50, s.p99];
  };
}

const runs = await Promise.all(args.map(async (dir) => ({ dir, measure: await measureOf(dir), results: [] as number[][] })));
for (let r = 0; r < rounds; r++) {
  for (const run of runs) run.results.push(await run.measure());
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const unit = row === "latency" ? "ms (p50/p99)" : "jobs/s";
for (const run of runs) {
  const figures = run.results.map((r) => r.map((x) => (row === "latency" ? x.toFixed(2) : String(x))).join("/"));
  const means = run.results[0]!.map((_, i) => mean(run.results.map((r) => r[i]!)));
  const meanText = means.map((m) => (row === "latency" ? m.toFixed(2) : String(Math.round(m)))).join("/");
  const at = row === "e2e" ? ` at --workers ${workers}` : row === "latency" ? ` at ${rate} jobs/s` : "";
  console.log(`${run.dir}: ${row} (${store}) ${figures.join(", ")} ${unit} (mean ${meanText})${at}`);
}
