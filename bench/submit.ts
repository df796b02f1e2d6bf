// submit.ts (bench): HTTP submit throughput with wrk, 64 connections: jobqueue single-job and
// 1,000-job batch requests (workers consuming meanwhile), and the no-database ceiling app.
// Rows 1-3 (and 9 for the embedded store). Starts its own servers; never runs two at once.
import {
  NOOP_TYPES, type Result, type ServerProcess, type StoreTarget, counter, emit, fmtInt, log, newStoreTarget, nextXid,
  spawnServer, startJobqueue, typesFile,
} from "./lib.ts";
import { cpuMeter, fmtCpu, postgresPids } from "./proc.ts";
import { runWrk } from "./wrk.ts";

export const CONNECTIONS = 64;
const THREADS = 2;
const WARMUP_S = 2;
const SINGLE_TARGET = 20_000;
const BATCH_TARGET = 100_000;
const CEILING_SHARE_TARGET = 0.4;

const SINGLE_BODY = JSON.stringify({ type: "noop", payload: { n: 1 } });
const BATCH_SIZE = 1000;
const BATCH_BODY = JSON.stringify({ jobs: Array.from({ length: BATCH_SIZE }, (_, i) => ({ type: "noop", payload: { n: i } })) });

export interface SubmitRun {
  jobsPerS: number;
  requests: number;
  non202: number;
  /** e.g. ": 4xx 434, 5xx 0, last status 429" when there were any, else "". */
  non202Text: string;
  errors: number;
  p99Ms: number;
  notes: string;
}

/** Warm up, then one measured wrk run; CPU of server, postgres and wrk over the measured window. */
async function measure(server: ServerProcess, body: string, jobsPerRequest: number, durationS: number, target?: StoreTarget): Promise<SubmitRun> {
  const url = `${server.url}/submit`;
  await runWrk({ url, body, connections: CONNECTIONS, threads: THREADS, durationS: WARMUP_S });
  const meter = cpuMeter(target?.kind === "postgres" ? { server: () => [server.pid], postgres: postgresPids } : { server: () => [server.pid] });
  const logsBefore = server.logs.length;
  const xid0 = target?.db ? await nextXid(target.db) : 0;
  const completed0 = target ? await counter(server.url, "jobqueue_jobs_completed_total") : 0;
  meter.start();
  const r = await runWrk({ url, body, connections: CONNECTIONS, threads: THREADS, durationS });
  const cpu = { ...meter.stop(), wrk: r.cpuPercent };
  const jobsPerS = (r.ok * jobsPerRequest) / r.durationS;
  const notes = [fmtCpu(cpu)];
  if (target) {
    const completedPerS = ((await counter(server.url, "jobqueue_jobs_completed_total")) - completed0) / r.durationS;
    notes.push(`completed meanwhile ${fmtInt(completedPerS)}/s`);
  }
  if (target?.db) {
    const xacts = ((await nextXid(target.db)) - xid0) / r.durationS;
    notes.push(`${fmtInt(xacts)} write xacts/s (${((r.ok * jobsPerRequest) / r.durationS / Math.max(1, xacts)).toFixed(1)} submitted jobs per xact)`);
  }
  notes.push(`wrk p99 ${r.p99Ms.toFixed(1)} ms`);
  const complaints = server.logs.slice(logsBefore).filter((l) => l.level === "warn" || l.level === "error");
  if (complaints.length > 0) {
    const first = complaints[0]!;
    notes.push(`server logged ${complaints.length} warnings/errors, first: ${String(first.msg)}${first.err ? ` (${String(first.err).slice(0, 120)})` : ""}`);
  }
  const by = r.non202By;
  const non202Text = r.non202 === 0 ? "" : `: 4xx ${by["4xx"]}, 5xx ${by["5xx"]}, last status ${by.last}`;
  return { jobsPerS, requests: r.ok + r.non202, non202: r.non202, non202Text, errors: r.errors, p99Ms: r.p99Ms, notes: notes.join("; ") };
}

function statusText(run: SubmitRun): string {
  return `${fmtInt(run.jobsPerS)} jobs/s (non-202: ${run.non202}${run.non202Text}, socket errors: ${run.errors})`;
}

/** The ceiling app: bare Hono + parseSubmitBody, no database. */
export async function ceilingSingle(durationS: number): Promise<SubmitRun> {
  const server = await spawnServer(["bun", "bench/ceiling.ts"], {});
  try {
    return await measure(server, SINGLE_BODY, 1, durationS);
  } finally {
    await server.stop();
  }
}

export async function jobqueueSubmit(kind: "postgres" | "sqlite", batch: boolean, durationS: number): Promise<SubmitRun> {
  const target = await newStoreTarget(kind, batch ? "submitbatch" : "submit");
  try {
    // 12 s of batches queue ~1M jobs while the workers drain a few thousand a second: lift the
    // default --max-queued 1,000,000 so the run measures intake, not the 429 queue_full guard.
    const server = await startJobqueue({ target, types: typesFile(NOOP_TYPES), args: batch ? ["--max-queued", "0"] : [] });
    try {
      return await measure(server, batch ? BATCH_BODY : SINGLE_BODY, batch ? BATCH_SIZE : 1, durationS, target);
    } finally {
      await server.stop();
    }
  } finally {
    await target.cleanup();
  }
}

export async function main(opts: { durationS: number; sqlite: boolean }): Promise<Result[]> {
  const d = opts.durationS;
  const how = `wrk -t${THREADS} -c${CONNECTIONS}, ${d} s after ${WARMUP_S} s warm-up; server default --workers 32 running the noop jobs meanwhile`;
  log("submit: jobqueue single-job");
  const single = await jobqueueSubmit("postgres", false, d);
  log("submit: jobqueue 1,000-job batches");
  const batch = await jobqueueSubmit("postgres", true, d);
  log("submit: ceiling (bare Hono + zod, no database)");
  const ceiling = await ceilingSingle(d);
  const share = single.jobsPerS / ceiling.jobsPerS;
  const results: Result[] = [
    {
      row: "1", bench: "HTTP submit, single-job requests", subject: "jobqueue (PostgreSQL)",
      result: statusText(single), target: `≥ ${fmtInt(SINGLE_TARGET)} jobs/s`,
      met: single.jobsPerS >= SINGLE_TARGET && single.non202 === 0, notes: `${how}; ${single.notes}`,
    },
    {
      row: "2", bench: "HTTP submit, 1,000-job batches", subject: "jobqueue (PostgreSQL)",
      result: statusText(batch), target: `≥ ${fmtInt(BATCH_TARGET)} jobs/s`,
      met: batch.jobsPerS >= BATCH_TARGET && batch.non202 === 0,
      notes: `same as row 1, with --max-queued 0 (the default 1,000,000 cap answers 429 queue_full within the run); ${batch.notes}`,
    },
    {
      row: "3", bench: "HTTP submit ceiling, single-job requests", subject: "bare Hono + same zod, no DB",
      result: statusText(ceiling), notes: `bun bench/ceiling.ts; ${ceiling.notes}`,
    },
    {
      row: "3", bench: "jobqueue single-job as share of ceiling", subject: "jobqueue (PostgreSQL)",
      result: `${(share * 100).toFixed(0)} %`, target: `≥ ${CEILING_SHARE_TARGET * 100} %`, met: share >= CEILING_SHARE_TARGET,
    },
  ];
  if (opts.sqlite) {
    log("submit: jobqueue single-job on the embedded store");
    results.push(await sqliteRow(d));
  }
  return results;
}

async function sqliteRow(durationS: number): Promise<Result> {
  const base = { row: "9", bench: "HTTP submit, single-job requests", subject: "jobqueue (SQLite, --db)" };
  try {
    const run = await jobqueueSubmit("sqlite", false, durationS);
    return { ...base, result: statusText(run), notes: run.notes };
  } catch (err) {
    return { ...base, result: `failed: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}` };
  }
}

if (import.meta.main) {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
  for (const r of await main({ durationS, sqlite: process.argv.includes("--sqlite") })) emit(r);
}
