// import.ts: a whole store's rows written into a PostgreSQL database that holds no job yet, in one
// transaction (`jobqueue move-to-postgres`): the tables locked against writers and found empty, the
// id sequence moved past every id the rows use, then each table a batch per statement. No reading of
// the source here (sqlite/export.ts) and no batching decisions (ops/move-to-postgres.ts).
import { TargetNotEmptyError } from "../../errors.ts";
import type { AttemptRow, BucketRecord, CompletedRecord, DeadRecord, JobRecord, KeyRecord, PausedRecord, ScheduleRecord } from "../dump.ts";
import { createConnection, type Transaction } from "./connection.ts";
import { at } from "./sql.ts";

/** The tables whose rows make a database "hold jobs" (and which an import fills from nothing). */
const JOB_TABLES = ["pending_jobs", "inflight_jobs", "dead_jobs", "completed_jobs", "idempotency_keys", "job_attempts", "jobqueue_schedules"] as const;

/** What one import transaction writes. Each call is one statement; rows keep their ids. */
export interface ImportTx {
  pending(rows: JobRecord[]): Promise<void>;
  dead(rows: DeadRecord[]): Promise<void>;
  completed(rows: CompletedRecord[]): Promise<void>;
  keys(rows: KeyRecord[]): Promise<void>;
  /** Numbered (seq) in the order given, so each job's history keeps its order. */
  attempts(rows: AttemptRow[]): Promise<void>;
  /** Merged with any paused already (a type paused twice stays paused once). */
  paused(rows: PausedRecord[]): Promise<void>;
  schedules(rows: ScheduleRecord[]): Promise<void>;
  /** Merged with any already there, keeping the later next start (the stricter). */
  buckets(rows: BucketRecord[]): Promise<void>;
  /** Rows now in each table, as this transaction sees them. */
  counts(): Promise<Record<string, number>>;
}

/**
 * Run `fill` in one transaction on `url`'s database, after locking the job tables against writers
 * (EXCLUSIVE: readers go on) and checking they hold nothing (TargetNotEmptyError otherwise), and
 * moving jobs_id_seq past `lastId`, so nothing inserted meanwhile or later can take an id the rows
 * use. A sequence move outlives a rollback: then it only leaves a gap. Commits when `fill` resolves;
 * anything it throws rolls everything back. The schema must be migrated already.
 */
export async function importIntoPostgres<T>(url: string, lastId: number, fill: (tx: ImportTx) => Promise<T>): Promise<T> {
  const db = createConnection({ url, max: 1 });
  try {
    return await db.begin(async (tx) => {
      await tx.query(`LOCK TABLE ${JOB_TABLES.join(", ")} IN EXCLUSIVE MODE`);
      const [held] = await tx.query<Record<string, boolean>>(
        `SELECT ${JOB_TABLES.map((t) => `EXISTS (SELECT 1 FROM ${t}) AS ${t}`).join(", ")}`);
      const nonEmpty = JOB_TABLES.filter((t) => held?.[t]);
      if (nonEmpty.length > 0) throw new TargetNotEmptyError(nonEmpty);
      await tx.query("SELECT setval('jobs_id_seq', greatest($1::bigint, (SELECT last_value FROM jobs_id_seq), 1), true)", [lastId]);
      return await fill(writer(tx));
    });
  } finally {
    await db.close();
  }
}

function writer(tx: Transaction): ImportTx {
  const col = <R, K extends keyof R>(rows: R[], k: K) => rows.map((r) => r[k]);
  const jobArrays = (rows: JobRecord[]) => [
    col(rows, "id"), col(rows, "type"), col(rows, "payload"), col(rows, "priority"), col(rows, "attempts"), col(rows, "max_attempts"),
    col(rows, "timeout_ms"), col(rows, "run_at"), col(rows, "created_at"), col(rows, "last_error"), col(rows, "key"), col(rows, "start_by"),
    col(rows, "throttles"), col(rows, "trace"),
  ];
  const JOB_UNNEST = `unnest($1::bigint[], $2::text[], $3::text[], $4::int2[], $5::int4[], $6::int4[], $7::int4[], $8::float8[], $9::float8[],
      $10::text[], $11::text[], $12::float8[], $13::int4[], $14::text[])`;
  const JOB_NAMES = "id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, key, start_by, throttles, trace";
  const JOB_VALUES = `id, type, payload::json, priority, attempts, max_attempts, timeout_ms, ${at("run_at")}, ${at("created_at")},
      last_error, key, ${at("start_by")}, throttles, trace`;
  const skipEmpty = <R>(fn: (rows: R[]) => Promise<unknown>) => async (rows: R[]) => {
    if (rows.length > 0) await fn(rows);
  };

  return {
    pending: skipEmpty((rows: JobRecord[]) => tx.query(`
      INSERT INTO pending_jobs (${JOB_NAMES})
      SELECT ${JOB_VALUES} FROM ${JOB_UNNEST} AS t(${JOB_NAMES})`, jobArrays(rows))),

    dead: skipEmpty((rows: DeadRecord[]) => tx.query(`
      INSERT INTO dead_jobs (${JOB_NAMES}, failed_at)
      SELECT ${JOB_VALUES}, ${at("failed_at")} FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int2[], $5::int4[], $6::int4[],
        $7::int4[], $8::float8[], $9::float8[], $10::text[], $11::text[], $12::float8[], $13::int4[], $14::text[], $15::float8[])
        AS t(${JOB_NAMES}, failed_at)`, [...jobArrays(rows), col(rows, "failed_at")])),

    completed: skipEmpty((rows: CompletedRecord[]) => tx.query(`
      INSERT INTO completed_jobs (id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result, run_ms, node)
      SELECT id, type, priority, attempts, max_attempts, ${at("run_at")}, ${at("created_at")}, ${at("finished_at")}, ${at("expires_at")},
             result, run_ms, node
      FROM unnest($1::bigint[], $2::text[], $3::int2[], $4::int4[], $5::int4[], $6::float8[], $7::float8[], $8::float8[], $9::float8[],
                  $10::text[], $11::int4[], $12::text[])
        AS t(id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result, run_ms, node)`,
      [col(rows, "id"), col(rows, "type"), col(rows, "priority"), col(rows, "attempts"), col(rows, "max_attempts"), col(rows, "run_at"),
       col(rows, "created_at"), col(rows, "finished_at"), col(rows, "expires_at"), col(rows, "result"), col(rows, "run_ms"), col(rows, "node")])),

    keys: skipEmpty((rows: KeyRecord[]) => tx.query(`
      INSERT INTO idempotency_keys (key, job_id, created_at)
      SELECT key, job_id, ${at("created_at")} FROM unnest($1::text[], $2::bigint[], $3::float8[]) AS t(key, job_id, created_at)`,
      [col(rows, "key"), col(rows, "job_id"), col(rows, "created_at")])),

    attempts: skipEmpty((rows: AttemptRow[]) => tx.query(`
      INSERT INTO job_attempts (job_id, attempt, node, started_at, ended_at, outcome, status, exit_code, error)
      SELECT job_id, attempt, node, ${at("started_at")}, ${at("ended_at")}, outcome, status, exit_code, error
      FROM unnest($1::bigint[], $2::int4[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::int4[], $8::int4[], $9::text[])
           WITH ORDINALITY AS t(job_id, attempt, node, started_at, ended_at, outcome, status, exit_code, error, ord)
      ORDER BY ord`,
      [col(rows, "job_id"), col(rows, "attempt"), col(rows, "node"), col(rows, "started_at"), col(rows, "ended_at"), col(rows, "outcome"),
       col(rows, "status"), col(rows, "exit_code"), col(rows, "error")])),

    paused: skipEmpty((rows: PausedRecord[]) => tx.query(`
      INSERT INTO jobqueue_paused (type, paused_at)
      SELECT type, ${at("paused_at")} FROM unnest($1::text[], $2::float8[]) AS t(type, paused_at)
      ON CONFLICT (type) DO NOTHING`, [col(rows, "type"), col(rows, "paused_at")])),

    schedules: skipEmpty((rows: ScheduleRecord[]) => tx.query(`
      INSERT INTO jobqueue_schedules (name, last_tick, last_job_id)
      SELECT name, ${at("last_tick")}, last_job_id FROM unnest($1::text[], $2::float8[], $3::bigint[]) AS t(name, last_tick, last_job_id)`,
      [col(rows, "name"), col(rows, "last_tick"), col(rows, "last_job_id")])),

    buckets: skipEmpty((rows: BucketRecord[]) => tx.query(`
      INSERT INTO jobqueue_buckets AS b (type, key, tat)
      SELECT type, key, tat FROM unnest($1::text[], $2::text[], $3::float8[]) AS t(type, key, tat)
      ON CONFLICT (type, key) DO UPDATE SET tat = greatest(b.tat, excluded.tat)`, [col(rows, "type"), col(rows, "key"), col(rows, "tat")])),

    async counts() {
      const tables = [...JOB_TABLES, "jobqueue_paused", "jobqueue_buckets"];
      const [row] = await tx.query<Record<string, number>>(`SELECT ${tables.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(", ")}`);
      return row ?? {};
    },
  };
}
