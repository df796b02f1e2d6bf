// move-to-postgres.ts: moving a stopped embedded store into PostgreSQL (`jobqueue move-to-postgres`):
// every job with its id, key, flow-control columns, attempts, last error and history, the idempotency
// keys, paused types, schedules and rate buckets, in one PostgreSQL transaction. Jobs that were
// running (the server died with them) arrive pending, their interrupted attempt on record but not
// counted. No SQL here: sqlite/export.ts reads, postgres/import.ts writes.
import { redactUrl } from "../logger.ts";
import { ATTEMPTS_KEPT } from "../store/rows.ts";
import type { AttemptRow, InflightRecord, JobRecord } from "../store/dump.ts";
import { createPostgresStore } from "../store/postgres/index.ts";
import { importIntoPostgres } from "../store/postgres/import.ts";
import { openSqliteExport } from "../store/sqlite/export.ts";

/** A statement carries at most this many rows, and stops taking more past this many bytes of text. */
const BATCH_ROWS = 1000;
const BATCH_BYTES = 8 << 20;

/** The last error a moved running job carries on its interrupted attempt's record. */
export const MOVED_WHILE_RUNNING = "interrupted: its store was moved to PostgreSQL while it ran";

export interface MoveSummary {
  from: string;
  /** The target, without its password. */
  to: string;
  /** Rows written to each PostgreSQL table (pending_jobs includes the jobs that were running). */
  tables: Record<string, number>;
  /** Jobs that were inflight in the file, now pending with their attempt not counted. */
  runningMovedToPending: number;
  /** The id the next job submitted to PostgreSQL will get, at least. */
  nextId: number;
}

/**
 * Move the store in the SQLite file `from` into the PostgreSQL database `to`. Refuses (and changes
 * nothing) while a server holds the file (StoreLockedError), when the file is not a jobqueue
 * database (NotAStoreError) and when the target already holds jobs (TargetNotEmptyError). Migrates
 * both schemas first. The file is left as it was (but migrated): do not serve it again.
 */
export async function moveToPostgres(opts: { from: string; to: string; now?: number }): Promise<MoveSummary> {
  const now = opts.now ?? Date.now();
  const source = await openSqliteExport(opts.from);
  try {
    const target = createPostgresStore({ url: opts.to });
    try {
      await target.migrate();
    } finally {
      await target.close();
    }
    const lastId = source.lastId();
    // The running jobs are few (bounded by the workers of the one process that had the file).
    const running = new Map<number, InflightRecord>();
    for (const r of source.inflight()) running.set(r.id, r);

    const tables = await importIntoPostgres(opts.to, lastId, async (tx) => {
      const written: Record<string, number> = {};
      /** Rows of one table in statements of at most BATCH_ROWS rows and about BATCH_BYTES bytes. */
      const copy = async <R>(table: string, rows: Iterable<R>, write: (batch: R[]) => Promise<void>, bytesOf: (row: R) => number = () => 0) => {
        let batch: R[] = [];
        let bytes = 0;
        written[table] = (written[table] ?? 0);
        for (const row of rows) {
          batch.push(row);
          bytes += bytesOf(row);
          if (batch.length >= BATCH_ROWS || bytes >= BATCH_BYTES) {
            await write(batch);
            written[table]! += batch.length;
            batch = [];
            bytes = 0;
          }
        }
        if (batch.length > 0) await write(batch);
        written[table]! += batch.length;
      };
      const jobBytes = (r: JobRecord) => r.payload.length + (r.last_error?.length ?? 0);

      await copy("pending_jobs", source.pending(), tx.pending, jobBytes);
      await copy("pending_jobs", [...running.values()].map(asPending), tx.pending, jobBytes);
      await copy("dead_jobs", source.dead(), tx.dead, jobBytes);
      await copy("completed_jobs", source.completed(), tx.completed, (r) => r.result?.length ?? 0);
      await copy("idempotency_keys", source.keys(), tx.keys, (r) => r.key.length);
      await copy("job_attempts", withInterruptions(source.attempts(), running, now), tx.attempts, (r) => r.error?.length ?? 0);
      await copy("jobqueue_paused", source.paused(), tx.paused);
      await copy("jobqueue_schedules", source.schedules(), tx.schedules);
      await copy("jobqueue_buckets", source.buckets(), tx.buckets, (r) => r.key.length);

      // What the transaction sees must be what was written, or nothing is committed.
      const counts = await tx.counts();
      const off = Object.entries(written).filter(([t, n]) => t !== "jobqueue_paused" && t !== "jobqueue_buckets" && counts[t] !== n);
      if (off.length > 0) throw new Error(`the moved rows do not add up: ${off.map(([t, n]) => `${t} wrote ${n}, holds ${counts[t]}`).join("; ")}`);
      return written;
    });
    return { from: source.location, to: redactUrl(opts.to), tables, runningMovedToPending: running.size, nextId: Math.max(lastId, 1) + 1 };
  } finally {
    await source.close();
  }
}

/** A job that was running, as pending: its interrupted attempt not counted, due when it was due. */
function asPending(r: InflightRecord): JobRecord {
  const { picked_at: _p, lease_until: _l, owner: _o, ...job } = r;
  return { ...job, attempts: Math.max(0, r.attempts - 1) };
}

/**
 * The attempt history (grouped by job, oldest first), with each running job's interrupted attempt
 * added at the end of its own, the newest ATTEMPTS_KEPT of each job kept.
 */
function* withInterruptions(rows: Iterable<AttemptRow>, running: ReadonlyMap<number, InflightRecord>, now: number): Iterable<AttemptRow> {
  const interrupted = (r: InflightRecord): AttemptRow => ({
    job_id: r.id, attempt: r.attempts, node: r.owner, started_at: r.picked_at, ended_at: now,
    outcome: "node_restarted", status: null, exit_code: null, error: MOVED_WHILE_RUNNING,
  });
  let group: AttemptRow[] = [];
  const done = new Set<number>();
  function* flush() {
    const id = group[0]?.job_id;
    if (id === undefined) return;
    const job = running.get(id);
    if (job !== undefined) {
      group.push(interrupted(job));
      done.add(id);
    }
    yield* group.slice(-ATTEMPTS_KEPT);
    group = [];
  }
  for (const row of rows) {
    if (group.length > 0 && group[0]!.job_id !== row.job_id) yield* flush();
    group.push(row);
  }
  yield* flush();
  for (const job of running.values()) if (!done.has(job.id)) yield interrupted(job);
}
