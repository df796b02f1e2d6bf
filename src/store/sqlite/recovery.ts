// recovery.ts: the embedded store's hand-backs of inflight rows without a verdict (this node's aborted
// attempts and stray leases, expired leases, a restarted node's rows), the start-up stream of pending
// rows, the dead-lettering of pending rows past their start-by deadline, and the pruning of expired
// completed records. Verdicts on attempts live in settle.ts.
import { EXPIRED_ERROR, type AttemptOutcome, type ClaimRef, type ExpiredJob, type PendingEntry } from "../rows.ts";
import type { Connection, Part } from "./connection.ts";
import { CARRY_COLS, COPY_COLS, ENTRY_COLS, moveEach, type TableSteps } from "./tables.ts";

type RecoveryPart = Part<"release" | "releaseStrays" | "reapExpired" | "expirePending" | "recoverOwner" | "pruneCompleted"> & {
  streamPending(batchSize: number): AsyncIterable<PendingEntry[]>;
};

export function createRecovery({ conn, tables }: { conn: Connection; tables: TableSteps }): RecoveryPart {
  const { db, op, prepare } = conn;
  const { removed, deleteInflight, recordAttempt } = tables;
  const ownerIds = prepare<{ id: number }, [owner: string]>("SELECT id FROM inflight_jobs WHERE owner = ? ORDER BY id");

  // ---- release: attempts this process aborted itself (shutdown), fenced; the attempt is not counted, the run time kept ----
  const releaseFenced = prepare<PendingEntry, [id: number, attempt: number, owner: string]>(`
    INSERT INTO pending_jobs (${COPY_COLS}, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS}
    FROM inflight_jobs WHERE id = ? AND attempts = ? AND owner = ?
    RETURNING ${ENTRY_COLS}`);
  const releaseTx = db.transaction((refs: ClaimRef[], owner: string, now: number, outcome: AttemptOutcome | null) =>
    moveEach(refs, (r) => {
      const entry = releaseFenced().get(r.id, r.attempt, owner);
      if (entry && outcome !== null) recordAttempt(r.id, { outcome, endedAt: now }, null);
      return entry;
    }, deleteInflight));
  const release = op("release", (refs, owner, now, outcome = "shutdown") => (refs.length === 0 ? [] : releaseTx.immediate(refs, owner, now, outcome)));

  // ---- releaseStrays: rows leased by a claim or insert whose answer was lost: back as they were, no attempt counted ----
  const releaseStray = prepare<PendingEntry, [id: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS}, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS}
    FROM inflight_jobs WHERE id = ?
    RETURNING ${ENTRY_COLS}`);
  const releaseStraysTx = db.transaction((owner: string, keep: number[]) => {
    const kept = new Set(keep);
    const strays = ownerIds().all(owner).map((r) => r.id).filter((id) => !kept.has(id));
    return moveEach(strays, (id) => releaseStray().get(id), deleteInflight);
  });
  const releaseStrays = op("releaseStrays", (owner, keep) => releaseStraysTx.immediate(owner, keep));

  // ---- reapExpired, recoverOwner: hand-backs that keep the attempt counted ----
  // A hand-back without a verdict (lease expired, restart) keeps the attempt counted, so a job that
  // kills its process on every run is dead-lettered after max_attempts runs, not looped.
  const handBackDead = prepare<never, [error: string, failedAt: number, id: number]>(`
    INSERT INTO dead_jobs (${COPY_COLS}, failed_at, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
           ? || ' on the final attempt', ?, ${CARRY_COLS}
    FROM inflight_jobs WHERE id = ? AND attempts >= max_attempts`);
  const handBackPending = prepare<PendingEntry, [runAt: number | null, error: string, id: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS}, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, coalesce(?, run_at), created_at,
           coalesce(last_error, ?), ${CARRY_COLS}
    FROM inflight_jobs WHERE id = ? AND attempts < max_attempts
    RETURNING ${ENTRY_COLS}`);
  /** Hand inflight rows back without a verdict: final attempts to dead, the rest to pending. */
  const handBack = (ids: number[], runAt: number | null, error: string, now: number, outcome: AttemptOutcome) => {
    const back: PendingEntry[] = [];
    for (const id of ids) {
      recordAttempt(id, { outcome, endedAt: now }, error);
      const entry = handBackPending().get(runAt, error, id);
      if (entry) back.push(entry);
      else handBackDead().run(error, now, id);
      deleteInflight().run(id);
    }
    return back;
  };
  const expiredIds = prepare<{ id: number }, [now: number, limit: number]>(
    "SELECT id FROM inflight_jobs WHERE lease_until < ? ORDER BY lease_until LIMIT ?");
  const reapTx = db.transaction((now: number, limit: number) =>
    handBack(expiredIds().all(now, limit).map((r) => r.id), now, "lease expired", now, "lease_expired"));
  const reapExpired = op("reapExpired", (now, limit) => reapTx.immediate(now, limit));
  const recoverTx = db.transaction((owner: string, now: number) =>
    handBack(ownerIds().all(owner).map((r) => r.id), null, "interrupted by a restart", now, "node_restarted"));
  const recoverOwner = op("recoverOwner", (owner, now) => recoverTx.immediate(owner, now));

  // ---- expirePending: pending rows past their start-by deadline go to dead as expired ----
  const pastDeadline = prepare<{ id: number }, [now: number, limit: number]>(
    "SELECT id FROM pending_jobs WHERE start_by < ? ORDER BY start_by LIMIT ?");
  const expireOne = prepare<ExpiredJob, [error: string, failedAt: number, id: number]>(`
    INSERT INTO dead_jobs (${COPY_COLS}, failed_at, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, ?, ?, ${CARRY_COLS}
    FROM pending_jobs WHERE id = ?
    RETURNING id, type`);
  const deletePending = prepare<never, [id: number]>("DELETE FROM pending_jobs WHERE id = ?");
  const expireTx = db.transaction((now: number, limit: number) =>
    moveEach(pastDeadline().all(now, limit), (r) => expireOne().get(EXPIRED_ERROR, now, r.id), deletePending));
  const expirePending = op("expirePending", (now, limit) => expireTx.immediate(now, limit));

  // ---- streamPending: every pending row's sort fields, for the heaps at start-up ----
  const pendingPage = prepare<PendingEntry, [afterId: number, limit: number]>(
    `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE id > ? ORDER BY id LIMIT ?`);
  // Not built through op(): it runs at start-up, before anything can close the store.
  async function* streamPending(batchSize: number) {
    // Keyset pagination: each page is a short read, so writes can run between batches.
    let after = 0;
    for (;;) {
      const page = pendingPage().all(after, batchSize);
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1]!.id;
      if (page.length < batchSize) return;
    }
  }

  // ---- pruneCompleted: completed records past their expiry, and their keys ----
  const expiredCompleted = prepare<{ id: number }, [now: number, limit: number]>(
    "SELECT id FROM completed_jobs WHERE expires_at <= ? ORDER BY expires_at LIMIT ?");
  const legacyCompleted = prepare<{ id: number }, [before: number, limit: number]>(
    "SELECT id FROM completed_jobs WHERE expires_at IS NULL AND finished_at <= ? ORDER BY finished_at LIMIT ?");
  const deleteCompleted = prepare<never, [id: number]>("DELETE FROM completed_jobs WHERE id = ?");
  const pruneCompletedTx = db.transaction((now: number, limit: number, legacyKeepMs: number) => {
    const ids = expiredCompleted().all(now, limit).map((r) => r.id);
    if (ids.length < limit) ids.push(...legacyCompleted().all(now - legacyKeepMs, limit - ids.length).map((r) => r.id));
    for (const id of ids) removed(deleteCompleted().run(id).changes, id);
    return ids.length;
  });
  const pruneCompleted = op("pruneCompleted", (now, limit, legacyKeepMs) => pruneCompletedTx.immediate(now, limit, legacyKeepMs));

  return { release, releaseStrays, reapExpired, expirePending, recoverOwner, streamPending, pruneCompleted };
}
