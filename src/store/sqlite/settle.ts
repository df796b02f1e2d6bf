// settle.ts: the embedded store's verdicts on running attempts (complete, retry, bury, cancelled) and
// their lease extensions, each fenced by (id, attempts) and answering whether it took effect. Hand-backs
// without a verdict live in recovery.ts.
import type { AttemptEnd, AttemptOutcome, BuryMove, ClaimRef, CompleteMove, RetryMove, ThrottleMove } from "../rows.ts";
import type { Connection, Part } from "./connection.ts";
import { CARRY_COLS, COPY_COLS, THROTTLED_CARRY, type TableSteps } from "./tables.ts";

export function createSettle({ conn, tables }: { conn: Connection; tables: TableSteps }): Part<
  "complete" | "completeCancelled" | "retry" | "throttle" | "bury" | "extendLeases"
> {
  const { db, op, prepare } = conn;
  const { removed, deleteInflight, recordAttempt } = tables;

  /** After a fenced INSERT … SELECT copied a row out of inflight (changes > 0), remove the original. */
  const movedOut = (changes: number, id: number) => {
    if (changes === 0) return false;
    deleteInflight().run(id);
    return true;
  };
  /** movedOut for an attempt that did not complete its job: its record first, while the row is there. */
  const endedOut = (changes: number, m: { id: number; error: string; end?: AttemptEnd }, outcome: AttemptOutcome, now: number) => {
    if (changes === 0) return false;
    recordAttempt(m.id, m.end ?? { outcome, endedAt: now }, m.error);
    deleteInflight().run(m.id);
    return true;
  };

  // ---- complete, completeCancelled: the attempt's row leaves the system, and with it its key ----
  const completeFenced = prepare<never, [id: number, attempt: number]>("DELETE FROM inflight_jobs WHERE id = ? AND attempts = ?");
  const removeTx = db.transaction((refs: ClaimRef[]) => refs.map((r) => removed(completeFenced().run(r.id, r.attempt).changes, r.id)));
  // Kept (--keep-completed): a completed record replaces the row, and the idempotency key stays until it is pruned.
  const keepCompleted = prepare<never, [finishedAt: number, expiresAt: number, result: string | null, runMs: number | null, id: number, attempt: number]>(`
    INSERT INTO completed_jobs (id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result, run_ms, node)
    SELECT id, type, priority, attempts, max_attempts, run_at, created_at, ?, ?, ?, ?, owner
    FROM inflight_jobs WHERE id = ? AND attempts = ?`);
  const completeKeptTx = db.transaction((refs: CompleteMove[], finishedAt: number, expiresAt: number) =>
    refs.map((r) => movedOut(keepCompleted().run(finishedAt, expiresAt, r.result ?? null, r.runMs === undefined ? null : Math.round(r.runMs), r.id, r.attempt).changes, r.id)));
  const complete = op("complete", (refs, keep) => {
    if (refs.length === 0) return [];
    return keep === undefined ? removeTx.immediate(refs) : completeKeptTx.immediate(refs, keep.finishedAt, keep.expiresAt);
  });
  // A cancelled attempt is never kept as a completed record.
  const completeCancelled = op("completeCancelled", (refs) => (refs.length === 0 ? [] : removeTx.immediate(refs)));

  // ---- retry: back to pending with a new run time and the error ----
  const retryFenced = prepare<never, [runAt: number, error: string, id: number, attempt: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS}, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, ?, created_at, ?, ${CARRY_COLS}
    FROM inflight_jobs WHERE id = ? AND attempts = ?`);
  const retryTx = db.transaction((moves: RetryMove[]) =>
    moves.map((m) => endedOut(retryFenced().run(m.runAt, m.error, m.id, m.attempt).changes, m, "failed", Date.now())));
  const retry = op("retry", (moves) => (moves.length === 0 ? [] : retryTx.immediate(moves)));

  // ---- throttle: back to pending like retry, the attempt not used and one more throttle ----
  const throttleFenced = prepare<never, [runAt: number, error: string, id: number, attempt: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS}, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, ?, created_at, ?, ${THROTTLED_CARRY}
    FROM inflight_jobs WHERE id = ? AND attempts = ?`);
  const throttleTx = db.transaction((moves: ThrottleMove[]) =>
    moves.map((m) => endedOut(throttleFenced().run(m.runAt, m.error, m.id, m.attempt).changes, m, "throttled", Date.now())));
  const throttle = op("throttle", (moves) => (moves.length === 0 ? [] : throttleTx.immediate(moves)));

  // ---- bury: to dead with the error ----
  const buryFenced = prepare<never, [error: string, failedAt: number, id: number, attempt: number]>(`
    INSERT INTO dead_jobs (${COPY_COLS}, failed_at, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, ?, ?, ${CARRY_COLS}
    FROM inflight_jobs WHERE id = ? AND attempts = ?`);
  const buryTx = db.transaction((moves: BuryMove[], now: number) =>
    moves.map((m) => endedOut(buryFenced().run(m.error, now, m.id, m.attempt).changes, m, "failed", now)));
  const bury = op("bury", (moves, now) => (moves.length === 0 ? [] : buryTx.immediate(moves, now)));

  // ---- extendLeases: running attempts of this owner keep their rows ----
  const extendFenced = prepare<never, [leaseUntil: number, id: number, attempt: number, owner: string]>(
    "UPDATE inflight_jobs SET lease_until = ? WHERE id = ? AND attempts = ? AND owner = ?");
  const extendTx = db.transaction((refs: ClaimRef[], owner: string, leaseUntil: number) =>
    refs.map((r) => extendFenced().run(leaseUntil, r.id, r.attempt, owner).changes > 0));
  const extendLeases = op("extendLeases", (refs, owner, leaseUntil) => (refs.length === 0 ? [] : extendTx.immediate(refs, owner, leaseUntil)));

  return { complete, completeCancelled, retry, throttle, bury, extendLeases };
}
