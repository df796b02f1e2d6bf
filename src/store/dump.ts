// dump.ts: the rows of a whole store as one backend reads them out and another writes them in
// (`jobqueue move-to-postgres`): every table's columns under their SQL names, times in epoch ms.
// Shapes only: the reading lives in sqlite/export.ts, the writing in postgres/import.ts.

/** A row of pending_jobs or dead_jobs (the columns every job table shares). */
export interface JobRecord {
  id: number;
  type: string;
  /** The JSON text as submitted. */
  payload: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  run_at: number;
  created_at: number;
  last_error: string | null;
  key: string | null;
  start_by: number | null;
  throttles: number;
  /** The W3C traceparent it was submitted with. */
  trace: string | null;
}

/** A row of inflight_jobs: a job and its running attempt's claim. */
export interface InflightRecord extends JobRecord {
  picked_at: number;
  lease_until: number;
  owner: string;
}

/** A row of dead_jobs. */
export interface DeadRecord extends JobRecord {
  failed_at: number;
}

/** A row of completed_jobs (kept with --keep-completed; no payload). */
export interface CompletedRecord {
  id: number;
  type: string;
  priority: number;
  attempts: number;
  max_attempts: number;
  run_at: number;
  created_at: number;
  finished_at: number;
  expires_at: number | null;
  result: string | null;
  run_ms: number | null;
  node: string | null;
}

/** A row of idempotency_keys. */
export interface KeyRecord {
  key: string;
  job_id: number;
  created_at: number;
}

/** A row of job_attempts, without its sequence number (the writer numbers them in the order given). */
export interface AttemptRow {
  job_id: number;
  attempt: number;
  node: string | null;
  started_at: number | null;
  ended_at: number;
  outcome: string;
  status: number | null;
  exit_code: number | null;
  error: string | null;
}

/** A row of jobqueue_paused. */
export interface PausedRecord {
  type: string;
  paused_at: number;
}

/** A row of jobqueue_schedules. */
export interface ScheduleRecord {
  name: string;
  last_tick: number;
  last_job_id: number;
}

/** A row of jobqueue_buckets (a rate limit's theoretical arrival time of its next start). */
export interface BucketRecord {
  type: string;
  key: string;
  tat: number;
}

/** Every table of a store, each read as a stream of rows. */
export interface StoreDump {
  /** The largest id the store ever handed out (jobs that left the system included). */
  lastId(): number;
  pending(): Iterable<JobRecord>;
  inflight(): Iterable<InflightRecord>;
  dead(): Iterable<DeadRecord>;
  completed(): Iterable<CompletedRecord>;
  keys(): Iterable<KeyRecord>;
  /** Grouped by job, oldest first within each job. */
  attempts(): Iterable<AttemptRow>;
  paused(): Iterable<PausedRecord>;
  schedules(): Iterable<ScheduleRecord>;
  buckets(): Iterable<BucketRecord>;
}
