// export.ts: an embedded store read out whole, table by table (StoreDump), for `jobqueue
// move-to-postgres`. Opens the file under the store's own lock, so no server can hold it meanwhile,
// and brings its schema up to date first (as a server starting on it would); writes nothing else.
import type {
  AttemptRow, BucketRecord, CompletedRecord, DeadRecord, InflightRecord, JobRecord, KeyRecord, PausedRecord, ScheduleRecord, StoreDump,
} from "../dump.ts";
import { openConnection } from "./connection.ts";

const JOB = "id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, key, start_by, throttles, trace";

export interface SqliteExport extends StoreDump {
  /** The file, as an absolute path. */
  readonly location: string;
  close(): Promise<void>;
}

/**
 * Open an existing store's file for reading it out: StoreLockedError while a server holds it,
 * NotAStoreError when it is missing or not a jobqueue database. Each table streams in id order
 * (attempts grouped by job, oldest first) straight from SQLite, so memory holds one row at a time.
 */
export async function openSqliteExport(path: string): Promise<SqliteExport> {
  const { conn, lifecycle, location } = openConnection({ path, existing: true });
  try {
    await lifecycle.migrate();
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
  const { db } = conn;
  const rows = <R>(sql: string): Iterable<R> => ({ [Symbol.iterator]: () => db.query<R, []>(sql).iterate() });
  return {
    location,
    lastId: () => db.query<{ last_id: number }, []>("SELECT max(last_id, coalesce((SELECT max(id) FROM (" +
      "SELECT max(id) AS id FROM pending_jobs UNION ALL SELECT max(id) FROM inflight_jobs UNION ALL " +
      "SELECT max(id) FROM dead_jobs UNION ALL SELECT max(id) FROM completed_jobs)), 0)) AS last_id FROM job_ids").get()?.last_id ?? 0,
    pending: () => rows<JobRecord>(`SELECT ${JOB} FROM pending_jobs ORDER BY id`),
    inflight: () => rows<InflightRecord>(`SELECT ${JOB}, picked_at, lease_until, owner FROM inflight_jobs ORDER BY id`),
    dead: () => rows<DeadRecord>(`SELECT ${JOB}, failed_at FROM dead_jobs ORDER BY id`),
    completed: () => rows<CompletedRecord>(`
      SELECT id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result, run_ms, node
      FROM completed_jobs ORDER BY id`),
    keys: () => rows<KeyRecord>("SELECT key, job_id, created_at FROM idempotency_keys ORDER BY key"),
    attempts: () => rows<AttemptRow>(`
      SELECT job_id, attempt, node, started_at, ended_at, outcome, status, exit_code, error FROM job_attempts ORDER BY job_id, seq`),
    paused: () => rows<PausedRecord>("SELECT type, paused_at FROM jobqueue_paused ORDER BY type"),
    schedules: () => rows<ScheduleRecord>("SELECT name, last_tick, last_job_id FROM jobqueue_schedules ORDER BY name"),
    buckets: () => rows<BucketRecord>("SELECT type, key, tat FROM jobqueue_buckets ORDER BY type, key"),
    close: () => lifecycle.close(),
  };
}
