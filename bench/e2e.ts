// e2e.ts (bench): end to end on the jobqueue binary: 50,000 noop jobs preloaded while no worker
// can run them, then a fresh start and the time until every one is completed (row 4; row 9 on the
// embedded store). The preload goes through the product itself, so it works on either store.
import {
  NOOP_TYPES, type Result, type StoreTarget, counter, createDb, emit, fmtInt, holdingReceiver, log, newStoreTarget, nextXid,
  startJobqueue, typesFile, waitFor,
} from "./lib.ts";
import { cpuMeter, fmtCpu, postgresPids } from "./proc.ts";
import { createPostgresStore } from "../src/store/postgres/index.ts";

export const E2E_JOBS = 50_000;
/** Payload sizes of the end-to-end rows with real payloads (row 4p, and graphile-worker's 6p). */
export const E2E_PAYLOAD_BYTES = [1024, 16_384];

/** A JSON payload of about `bytes` bytes for job `n` (0: the bare `{"n":…}`). */
export function sizedPayload(n: number, bytes: number): { n: number; pad?: string } {
  return bytes <= 0 ? { n } : { n, pad: "x".repeat(Math.max(0, bytes - 24)) };
}
const PRELOAD_BATCH = 1000;
const PRELOAD_PARALLEL = 4;
/** Poll interval of /metrics while draining; the result's resolution. */
const POLL_MS = 10;

export interface E2eRun {
  jobsPerS: number;
  /** From spawn to the last completion, and from "listening" to it. */
  totalMs: number;
  afterListeningMs: number;
  notes: string;
}

/**
 * Preload: the server runs with one worker and `noop` mapped to a webhook that never answers, so
 * one job is held and the rest wait; 50 batch submits; SIGTERM with no grace hands the held job
 * straight back. Every job is then pending, and the restart finds them all.
 */
export async function preload(target: StoreTarget, jobs: number, payloadBytes = 0): Promise<void> {
  const hold = holdingReceiver();
  try {
    const server = await startJobqueue({
      target,
      types: typesFile(`[types.noop]\nurl = "${hold.url}"\n`),
      args: ["--workers", "1", "--shutdown-grace-ms", "0"],
    });
    // Batches stay well under the server's 1 MiB body limit, whatever the payloads.
    const perBatch = Math.max(1, Math.min(PRELOAD_BATCH, Math.floor(500_000 / (payloadBytes + 64))));
    const batches = Math.ceil(jobs / perBatch);
    let next = 0;
    const submitter = async () => {
      for (let b = next++; b < batches; b = next++) {
        const n = Math.min(perBatch, jobs - b * perBatch);
        const body = JSON.stringify({ jobs: Array.from({ length: n }, (_, i) => ({ type: "noop", payload: sizedPayload(b * perBatch + i, payloadBytes) })) });
        const res = await fetch(`${server.url}/submit`, { method: "POST", body, headers: { "content-type": "application/json" } });
        if (res.status !== 202) throw new Error(`preload submit answered ${res.status}: ${await res.text()}`);
      }
    };
    await Promise.all(Array.from({ length: PRELOAD_PARALLEL }, submitter));
    const code = await server.stop();
    if (code !== 0) throw new Error(`preload server exited with ${code}`);
  } finally {
    hold.close();
  }
}

/** The noop type with a rate far above anything this machine reaches: every claim weighs it, none is held. */
export const NOOP_TYPES_LOOSE_RATE = `${NOOP_TYPES}rate = { limit = 1000000, per = "1s", burst = 1000000 }\n`;
/** Rates that bind, for the achieved-vs-configured rows: a strict spacing, and a high rate with a small burst. */
const BINDING_RATES = [
  { limit: 100, burst: 1, jobs: 1_000, text: `"100/s"` },
  { limit: 1000, burst: 20, jobs: 10_000, text: `{ limit = 1000, per = "1s", burst = 20 }` },
];

/** One end-to-end run on a fresh store: preload, start, drain. */
export async function jobqueueE2e(
  kind: "postgres" | "sqlite", workers: number, types = NOOP_TYPES, jobs = E2E_JOBS, args: string[] = [], payloadBytes = 0,
): Promise<E2eRun> {
  const target = await newStoreTarget(kind, "e2e");
  try {
    await preload(target, jobs, payloadBytes);
    let server: Awaited<ReturnType<typeof startJobqueue>> | undefined;
    // The server's ticks all fall in the window: it is spawned after start().
    const serverPids = () => (server ? [server.pid] : []);
    const meter = cpuMeter(kind === "postgres" ? { server: serverPids, postgres: postgresPids } : { server: serverPids });
    const xid0 = target.db ? await nextXid(target.db) : 0;
    meter.start();
    server = await startJobqueue({ target, types: typesFile(types), args: ["--workers", String(workers), ...args] });
    const s = server;
    try {
      const started = s.logs.find((l) => l.msg === "queue started");
      if (started?.loaded !== jobs) throw new Error(`expected ${jobs} pending jobs at start, the server loaded ${String(started?.loaded)}`);
      let doneAt = 0;
      await waitFor(async () => {
        const done = await counter(s.url, "jobqueue_jobs_completed_total", 'type="noop"');
        doneAt = performance.now();
        return done >= jobs;
      }, 300_000, POLL_MS);
      const cpu = meter.stop();
      const totalMs = doneAt - s.spawnedAt;
      const notes = [`--workers ${workers}${args.length > 0 ? ` ${args.join(" ")}` : ""}`, `start-up (spawn → listening) ${Math.round(s.listeningAt - s.spawnedAt)} ms`, fmtCpu(cpu)];
      if (target.db) {
        const xacts = (await nextXid(target.db)) - xid0;
        notes.push(`${fmtInt(xacts)} write xacts (${(E2E_JOBS / Math.max(1, xacts)).toFixed(1)} jobs per xact)`);
      }
      return { jobsPerS: (jobs * 1000) / totalMs, totalMs, afterListeningMs: doneAt - s.listeningAt, notes: notes.join("; ") };
    } finally {
      await s.stop();
    }
  } finally {
    await target.cleanup();
  }
}

/**
 * What PostgreSQL alone allows: the store's own claim and complete statements, one after the other
 * on one connection, in batches of `batch`, with no handler, heap or HTTP around them. The gap
 * between this and the binary's rows is what the process adds; this itself bounds any design
 * that moves rows pending → inflight → gone with a commit per move.
 */
export async function storeOnly(batch: number, payloadBytes = 0): Promise<{ jobsPerS: number; claimUs: number; completeUs: number }> {
  const db = await createDb("storeonly");
  const store = createPostgresStore({ url: db.url, max: 1 });
  try {
    await store.migrate();
    const ids: number[] = [];
    const at = Date.now() - 1000;
    for (let i = 0; i < E2E_JOBS; i += PRELOAD_BATCH) {
      const jobs = Array.from({ length: PRELOAD_BATCH }, (_, k) => ({ type: "noop", payload: JSON.stringify(sizedPayload(i + k, payloadBytes)), priority: 0, maxAttempts: 5, runAt: at, timeoutMs: null }));
      ids.push(...(await store.insert(jobs, at)));
    }
    await db.sql`VACUUM ANALYZE pending_jobs`;
    let claimMs = 0;
    let completeMs = 0;
    const t0 = performance.now();
    for (let i = 0; i < ids.length; i += batch) {
      const a = performance.now();
      const got = (await store.claim(ids.slice(i, i + batch), "bench", Date.now(), 30_000)).jobs;
      const b = performance.now();
      await store.complete(got.map((j) => ({ id: j.id, attempt: j.attempts })));
      claimMs += b - a;
      completeMs += performance.now() - b;
    }
    const totalMs = performance.now() - t0;
    const statements = Math.ceil(ids.length / batch);
    return { jobsPerS: (ids.length * 1000) / totalMs, claimUs: (claimMs * 1000) / statements, completeUs: (completeMs * 1000) / statements };
  } finally {
    await store.close();
    await db.drop();
  }
}

export function e2eText(jobsPerS: number, totalMs: number): string {
  return `${fmtInt(jobsPerS)} jobs/s (${fmtInt(E2E_JOBS)} in ${(totalMs / 1000).toFixed(2)} s)`;
}

export async function main(opts: { sqlite: boolean; workers: number[] }): Promise<Result[]> {
  const results: Result[] = [];
  for (const workers of opts.workers) {
    log(`e2e: jobqueue on PostgreSQL, --workers ${workers}`);
    const run = await jobqueueE2e("postgres", workers);
    results.push({
      row: "4", bench: `End to end, ${fmtInt(E2E_JOBS)} preloaded noop jobs`, subject: `jobqueue (PostgreSQL, --workers ${workers})`,
      result: e2eText(run.jobsPerS, run.totalMs), value: run.jobsPerS,
      notes: `timed from process spawn (heap load included) to the last completion seen on /metrics; ${run.notes}`,
    });
  }
  for (const bytes of E2E_PAYLOAD_BYTES) {
    // Real payloads: the same drain at the default workers, each job carrying about `bytes` of JSON.
    const workers = opts.workers[0] ?? 32;
    log(`e2e: jobqueue on PostgreSQL, --workers ${workers}, ${fmtInt(bytes)}-byte payloads`);
    const run = await jobqueueE2e("postgres", workers, NOOP_TYPES, E2E_JOBS, [], bytes);
    results.push({
      row: "4p", bench: `End to end, ${fmtInt(E2E_JOBS)} preloaded noop jobs, ${fmtInt(bytes)}-byte payloads`,
      subject: `jobqueue (PostgreSQL, --workers ${workers})`, pair: `payload ${bytes}`,
      result: e2eText(run.jobsPerS, run.totalMs), value: run.jobsPerS,
      notes: `as row 4, each payload {"n":…,"pad":"xxx…"} about ${fmtInt(bytes)} bytes of JSON; ${run.notes}`,
    });
  }
  {
    // Flow control configured but not binding: the same drain with a rate on the type, so every
    // claim is weighed in the store; beside the first row (same settings, same run) for the ratio.
    const workers = opts.workers[0] ?? 32;
    log(`e2e: jobqueue on PostgreSQL, --workers ${workers}, a rate on the type that never binds`);
    const run = await jobqueueE2e("postgres", workers, NOOP_TYPES_LOOSE_RATE);
    const plain = results[0]?.value;
    results.push({
      row: "4f", bench: `End to end, ${fmtInt(E2E_JOBS)} preloaded noop jobs, flow control configured but not binding`,
      subject: `jobqueue (PostgreSQL, --workers ${workers}, rate 1,000,000/s)`,
      result: e2eText(run.jobsPerS, run.totalMs) + (plain ? ` (${((run.jobsPerS / plain) * 100).toFixed(1)} % of row 4's first run)` : ""), value: run.jobsPerS,
      notes: `every claim weighs the type's rate in the store (one transaction: lock candidates and bucket, decide, move); ${run.notes}`,
    });
    for (const r of BINDING_RATES) {
      log(`e2e: jobqueue on PostgreSQL, rate = ${r.text} that binds, ${fmtInt(r.jobs)} jobs`);
      const bound = await jobqueueE2e("postgres", workers, `${NOOP_TYPES}rate = ${r.text}\n`, r.jobs);
      // After the first burst, starts are spaced per/limit: the drain's span holds (jobs − burst) of them.
      const achieved = ((r.jobs - r.burst) * 1000) / bound.afterListeningMs;
      results.push({
        row: "4r", bench: `A rate-limited type with a backlog of ${fmtInt(r.jobs)}`, subject: `jobqueue (PostgreSQL, rate = ${r.text})`,
        result: `${fmtInt(achieved)} starts/s achieved of ${fmtInt(r.limit)}/s configured (${((achieved / r.limit) * 100).toFixed(1)} %)`, value: achieved,
        notes: `(jobs − burst) over the time from "listening" to the last completion on /metrics (the heap load counts against it); ${bound.notes}`,
      });
    }
  }
  for (const batch of opts.workers.filter((w) => w <= 256)) {
    log(`e2e: the PostgreSQL store's statements alone, batches of ${batch}`);
    const r = await storeOnly(batch);
    results.push({
      row: "4", bench: `End to end, ${fmtInt(E2E_JOBS)} preloaded noop jobs`, subject: `PostgreSQL store alone (claim + complete, batches of ${batch})`,
      result: `${fmtInt(r.jobsPerS)} jobs/s`,
      notes: `the bound from the database: the store's claim then complete statements back to back on one connection, no handler, heap or HTTP; ` +
        `claim ${fmtInt(r.claimUs)} µs, complete ${fmtInt(r.completeUs)} µs per statement (each one commit)`,
    });
  }
  for (const bytes of E2E_PAYLOAD_BYTES) {
    // Row 4p's bound: the same statements with the same payloads (the claim returns each payload).
    log(`e2e: the PostgreSQL store's statements alone, batches of 256, ${fmtInt(bytes)}-byte payloads`);
    const r = await storeOnly(256, bytes);
    results.push({
      row: "4p", bench: `End to end, ${fmtInt(E2E_JOBS)} preloaded noop jobs, ${fmtInt(bytes)}-byte payloads`,
      subject: "PostgreSQL store alone (claim + complete, batches of 256)", result: `${fmtInt(r.jobsPerS)} jobs/s`,
      notes: `as row 4's store-alone rows, with row 4p's payloads; claim ${fmtInt(r.claimUs)} µs, complete ${fmtInt(r.completeUs)} µs per statement`,
    });
  }
  if (opts.sqlite) {
    log("e2e: jobqueue on the embedded store");
    const base = { row: "9", bench: `End to end, ${fmtInt(E2E_JOBS)} preloaded noop jobs`, subject: "jobqueue (SQLite, --db)" };
    try {
      const run = await jobqueueE2e("sqlite", opts.workers[0] ?? 32);
      results.push({ ...base, result: e2eText(run.jobsPerS, run.totalMs), notes: run.notes });
    } catch (err) {
      results.push({ ...base, result: `failed: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}` });
    }
  }
  return results;
}

if (import.meta.main) {
  // The shipped default, then larger pools: a claim takes at most the free slots, so more slots
  // mean bigger claim and complete batches (jobqueue's own tuning, as the peers get theirs).
  const workers = (process.env.BENCH_E2E_WORKERS ?? "32,256,1000").split(",").map(Number);
  for (const r of await main({ sqlite: process.argv.includes("--sqlite"), workers })) emit(r);
}
