// memory.ts (bench): memory per queued job and start-up load time (row 8). 1,000,000 pending rows
// are inserted with SQL after `jobqueue migrate`; RSS right after "listening" is compared with an
// empty-queue start. Workers are held so the queue does not drain while it is measured.
import {
  type Result, type ServerProcess, emit, fmtInt, holdingReceiver, log, migrate, newStoreTarget, startJobqueue, typesFile,
} from "./lib.ts";
import { rssBytes } from "./proc.ts";

/** The bound on RSS per queued job. */
const BYTES_PER_JOB_TARGET = 64;
const JOBS = 1_000_000;
const SETTLED_AFTER_MS = 3000;
const LOAD_TARGET_MS = 3000;

interface Reading {
  rssAtListening: number;
  rssSettled: number;
  startMs: number;
  heapLoadMs: number;
}

/**
 * Start with one worker and `noop` mapped to a webhook that never answers, so exactly one job
 * leaves the heap; read RSS at "listening" and again after SETTLED_AFTER_MS.
 */
async function startAndRead(target: Awaited<ReturnType<typeof newStoreTarget>>, holdUrl: string): Promise<Reading> {
  const server: ServerProcess = await startJobqueue({
    target,
    types: typesFile(`[types.noop]\nurl = "${holdUrl}"\n`),
    args: ["--workers", "1", "--shutdown-grace-ms", "0"],
  });
  try {
    const rssAtListening = rssBytes(server.pid);
    await Bun.sleep(SETTLED_AFTER_MS);
    const rssSettled = rssBytes(server.pid);
    const started = server.logs.find((l) => l.msg === "queue started");
    return {
      rssAtListening, rssSettled,
      startMs: server.listeningAt - server.spawnedAt,
      heapLoadMs: Number(started?.ms ?? NaN),
    };
  } finally {
    await server.stop();
  }
}

export async function main(): Promise<Result[]> {
  const target = await newStoreTarget("postgres", "memory");
  const hold = holdingReceiver();
  try {
    await migrate(target);
    log("memory: empty-queue start");
    const empty = await startAndRead(target, hold.url);
    log(`memory: inserting ${fmtInt(JOBS)} pending rows`);
    const sql = target.db!.sql;
    await sql.unsafe(`
      INSERT INTO pending_jobs (type, payload, priority, max_attempts, run_at, created_at)
      SELECT 'noop', '{}'::json, (i % 11)::int2, 5, now() - interval '1 minute', now() - interval '1 minute'
      FROM generate_series(1, ${JOBS}) AS i`);
    // A table that has been in use is vacuumed: set hint bits now, not during the measured scan.
    await sql.unsafe("VACUUM ANALYZE pending_jobs");
    log("memory: start with 1,000,000 pending jobs");
    const full = await startAndRead(target, hold.url);
    const perJob = (full.rssAtListening - empty.rssAtListening) / JOBS;
    const perJobSettled = (full.rssSettled - empty.rssSettled) / JOBS;
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
    return [
      {
        row: "8", bench: "Memory per queued job", subject: "jobqueue (PostgreSQL)",
        result: `${perJob.toFixed(0)} B/job at listening (${perJobSettled.toFixed(0)} B/job ${SETTLED_AFTER_MS / 1000} s later)`,
        // Judged at "listening", when the server starts serving with the whole backlog loaded.
        target: `≤ ${BYTES_PER_JOB_TARGET} B/job`, met: perJob <= BYTES_PER_JOB_TARGET,
        notes: `RSS ${mb(full.rssAtListening)} with ${fmtInt(JOBS)} pending vs ${mb(empty.rssAtListening)} empty (settled: ${mb(full.rssSettled)} vs ${mb(empty.rssSettled)}); ` +
          "--workers 1 on a webhook that never answers, so one job is claimed",
      },
      {
        row: "8", bench: `Start-up with ${fmtInt(JOBS)} pending jobs`, subject: "jobqueue (PostgreSQL)",
        result: `${(full.startMs / 1000).toFixed(2)} s spawn → listening`, target: `≤ ${LOAD_TARGET_MS / 1000} s`, met: full.startMs <= LOAD_TARGET_MS,
        notes: `of which migrate + recover + heap load ("queue started" ms) ${fmtInt(full.heapLoadMs)} ms; empty-queue start ${(empty.startMs / 1000).toFixed(2)} s`,
      },
    ];
  } finally {
    hold.close();
    await target.cleanup();
  }
}

if (import.meta.main) {
  for (const r of await main()) emit(r);
}
