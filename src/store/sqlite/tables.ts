// tables.ts: the job tables as every part of the embedded store sees them: the column lists that read
// rows straight into the shapes of rows.ts, and the steps that finish a move in several parts. No
// transactions and no store methods here.
import { ATTEMPTS_KEPT, attemptError, type AttemptEnd } from "../rows.ts";
import type { Connection, Prepared } from "./connection.ts";

// Columns aliased to the shapes that cross the Store interface, so rows need no mapping.
export const JOB_COLS = `id, type, payload, priority, attempts, max_attempts AS maxAttempts, timeout_ms AS timeoutMs,
  run_at AS runAt, created_at AS createdAt, last_error AS lastError, key, start_by AS startBy, throttles, trace`;
export const ENTRY_COLS = "id, type, priority, run_at AS runAt, key";
/** The core columns a move copies from one job table to another. */
export const COPY_COLS = "id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error";
/** The flow-control columns every move between job tables carries as they are (after the core columns). */
export const CARRY_COLS = "key, start_by, throttles, trace";
/** The same columns for a dead job an operator revives: its key stays, its deadline and throttle count start afresh. */
export const REVIVED_CARRY = "key, NULL, 0, trace";
/** The same columns for a job a target pushed back: one more throttle. */
export const THROTTLED_CARRY = "key, start_by, throttles + 1, trace";

/** The steps several parts end their moves with. */
export interface TableSteps {
  /** After a job left the system for good (changes > 0), release its idempotency key and forget its attempts; says whether it left. */
  removed(changes: number, id: number): boolean;
  /**
   * Record the attempt of inflight row `id` (still there: call before it is deleted) that ended
   * without completing its job, and trim the job's history to the newest ATTEMPTS_KEPT.
   */
  recordAttempt(id: number, end: AttemptEnd, error: string | null): void;
  /** Delete an inflight row once a move has copied it elsewhere. */
  deleteInflight: Prepared<never, [id: number]>;
}

export function createTableSteps(conn: Connection): TableSteps {
  const releaseKey = conn.prepare<never, [jobId: number]>("DELETE FROM idempotency_keys WHERE job_id = ?");
  const forgetAttempts = conn.prepare<never, [jobId: number]>("DELETE FROM job_attempts WHERE job_id = ?");
  const insertAttempt = conn.prepare<never, [endedAt: number, outcome: string, status: number | null, exitCode: number | null, error: string | null, id: number]>(`
    INSERT INTO job_attempts (job_id, attempt, node, started_at, ended_at, outcome, status, exit_code, error)
    SELECT id, attempts, owner, picked_at, ?, ?, ?, ?, ? FROM inflight_jobs WHERE id = ?`);
  const trimAttempts = conn.prepare<never, [jobId: number, jobId2: number]>(`
    DELETE FROM job_attempts WHERE job_id = ? AND seq <= (
      SELECT seq FROM job_attempts WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ${ATTEMPTS_KEPT})`);
  return {
    removed(changes, id) {
      if (changes === 0) return false;
      releaseKey().run(id);
      forgetAttempts().run(id);
      return true;
    },
    recordAttempt(id, end, error) {
      insertAttempt().run(end.endedAt, end.outcome, end.status ?? null, end.exitCode ?? null, error === null ? null : attemptError(error), id);
      trimAttempts().run(id, id);
    },
    deleteInflight: conn.prepare("DELETE FROM inflight_jobs WHERE id = ?"),
  };
}

/**
 * A move, row by row: `copy` writes a row's copy into its new table and returns it (null when the row
 * was not there or its fence did not hold), then `remove` deletes the original. SQLite cannot insert
 * what a DELETE returns, so every move that answers rows is this pair. Returns the copies, in order.
 */
export function moveEach<I, T extends { id: number }>(items: Iterable<I>, copy: (item: I) => T | null, remove: Prepared<never, [id: number]>): T[] {
  const moved: T[] = [];
  for (const item of items) {
    const row = copy(item);
    if (!row) continue;
    remove().run(row.id);
    moved.push(row);
  }
  return moved;
}
