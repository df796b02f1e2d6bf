// sql.ts: what the statements of several parts of the PostgreSQL store share: the epoch-ms conversions,
// the columns a job or a pending entry is read with, and their row mappers. No statements, no
// connections: each statement stands beside the method that runs it.
import { ATTEMPTS_KEPT, type ClaimedJob, type PendingEntry } from "../rows.ts";

/**
 * A timestamptz expression as epoch ms (float8), as every time leaves this store. date_part is float
 * arithmetic; extract() computes in numeric (since PostgreSQL 14), ~0.7 µs a value against ~0.1 µs,
 * and a claim converts a few times per row. Rounded to whole µs (the type's resolution) the result
 * is the very double extract() gives, for any time whose µs count fits in 53 bits (up to year 2255):
 * 0 differences over a million values.
 */
export const ms = (col: string) => `(round(date_part('epoch', ${col}) * 1000000) / 1000)`;
/** Epoch ms (a float8 parameter or column) as timestamptz, as every time enters this store. */
export const at = (msExpr: string) => `to_timestamp(${msExpr}::float8 / 1000)`;

/** A job's columns as selected, with the payload as `payload` gives it. */
const jobCols = (payload: string) => `id, type, ${payload}, priority, attempts, max_attempts, timeout_ms,
  ${ms("run_at")} AS run_at, ${ms("created_at")} AS created_at, last_error, key, ${ms("start_by")} AS start_by, throttles, trace`;
// Columns selected for a claimed or viewed job; times as epoch ms (float8), ids as numbers.
export const JOB_COLS = jobCols("payload::text AS payload");
/** JOB_COLS with the payload as stored (json), for a CTE whose rows are cast only as they leave. */
export const JOB_COLS_STORED_PAYLOAD = jobCols("payload");
/** The names JOB_COLS gives its columns, in order. */
export const JOB_COL_NAMES = "id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, key, start_by, throttles, trace";
export const ENTRY_COLS = `id, type, priority, ${ms("run_at")} AS run_at, key`;
/** The flow-control columns every move between job tables carries as they are (after the core columns). */
export const CARRY_COLS = "key, start_by, throttles, trace";
/** The same columns for a dead job an operator revives: its key stays, its deadline and throttle count start afresh. */
export const REVIVED_CARRY = "key, NULL, 0, trace";
/** The same columns for a job a target pushed back: one more throttle. */
export const THROTTLED_CARRY = "key, start_by, throttles + 1, trace";

/**
 * CTEs (after a `moved` CTE of inflight rows) that record each moved row's attempt in job_attempts
 * and trim each of their jobs' histories to the newest ATTEMPTS_KEPT (the trim sees the rows from
 * before this statement, so it keeps one fewer: the new one makes it up). Each argument is an SQL
 * expression over `moved`'s columns or the statement's parameters. Starts with a comma.
 */
export const RECORD_ATTEMPTS = (outcome: string, endedAtMs: string, status: string, exitCode: string, error: string) => `,
  recorded AS (
    INSERT INTO job_attempts (job_id, attempt, node, started_at, ended_at, outcome, status, exit_code, error)
    SELECT id, attempts, owner, picked_at, ${at(endedAtMs)}, ${outcome}, ${status}, ${exitCode}, ${error} FROM moved),
  trimmed AS (
    DELETE FROM job_attempts a USING (
      SELECT seq FROM (
        SELECT seq, row_number() OVER (PARTITION BY job_id ORDER BY seq DESC) AS n
        FROM job_attempts WHERE job_id IN (SELECT id FROM moved)) r
      WHERE r.n >= ${ATTEMPTS_KEPT}) old
    WHERE a.seq = old.seq)`;

export interface JobRow {
  id: number; type: string; payload: string; priority: number; attempts: number; max_attempts: number;
  timeout_ms: number | null; run_at: number; created_at: number; last_error: string | null;
  key: string | null; start_by: number | null; throttles: number | null; trace: string | null;
}
export interface EntryRow { id: number; type: string; priority: number; run_at: number; key: string | null }

export function toClaimed(r: JobRow): ClaimedJob {
  return {
    id: r.id, type: r.type, payload: r.payload, priority: r.priority, attempts: r.attempts,
    maxAttempts: r.max_attempts, timeoutMs: r.timeout_ms, runAt: r.run_at, createdAt: r.created_at,
    lastError: r.last_error, key: r.key, startBy: r.start_by, throttles: r.throttles ?? 0, trace: r.trace,
  };
}
export const toEntry = (r: EntryRow): PendingEntry =>
  ({ id: r.id, type: r.type, priority: r.priority, runAt: r.run_at, key: r.key });
