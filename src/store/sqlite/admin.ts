// admin.ts: the embedded store's operator reads and actions (a job, stats, cancelling pending jobs,
// retrying and deleting dead letters) and the tests' table counts; listings are listing.ts's.
// Nothing here touches a running attempt.
import type { AttemptRecord, JobState, JobView, PendingEntry, StatsRow, StoreCounts } from "../rows.ts";
import { completedAttempt, statsFromRows } from "../rows.ts";
import type { Connection, Part } from "./connection.ts";
import { CARRY_COLS, REVIVED_CARRY, COPY_COLS, ENTRY_COLS, JOB_COLS, moveEach, type TableSteps } from "./tables.ts";

type ViewRow = Omit<JobView, "state" | "finishedAt" | "result"> & {
  state: "pending" | "inflight" | "dead" | "completed"; finishedAt: number | null; result: string | null; runMs: number | null; node: string | null;
};

export function createAdmin({ conn, tables }: { conn: Connection; tables: TableSteps }): Part<
  "get" | "stats" | "counts" | "cancelPending" | "retryDead" | "retryDeadOfType" | "deleteDead" | "deleteDeadOfType"
> {
  const { db, op, prepare } = conn;
  const { removed } = tables;

  // ---- get: one job, wherever it is, with its attempts on record ----
  const view = prepare<ViewRow, [id: number, id: number, id: number, id: number]>(`
    SELECT 'pending' AS state, ${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, NULL AS failedAt, NULL AS finishedAt, NULL AS result,
           NULL AS runMs, NULL AS node
      FROM pending_jobs WHERE id = ?
    UNION ALL
    SELECT 'inflight', ${JOB_COLS}, owner, lease_until, NULL, NULL, NULL, NULL, NULL FROM inflight_jobs WHERE id = ?
    UNION ALL
    SELECT 'dead', ${JOB_COLS}, NULL, NULL, failed_at, NULL, NULL, NULL, NULL FROM dead_jobs WHERE id = ?
    UNION ALL
    SELECT 'completed', id, type, 'null', priority, attempts, max_attempts, NULL, run_at, created_at, NULL,
           NULL, NULL, 0, NULL, NULL, NULL, NULL, finished_at, result, run_ms, node
      FROM completed_jobs WHERE id = ?`);
  const attemptsOf = prepare<AttemptRecord, [jobId: number]>(`
    SELECT attempt, node, started_at AS startedAt, ended_at AS endedAt, outcome, status, exit_code AS exitCode, error
    FROM job_attempts WHERE job_id = ? ORDER BY seq`);
  const get = op("get", (id, now) => {
    const r = view().get(id, id, id, id);
    if (!r) return null;
    const state: JobState = r.state === "pending" && r.runAt > now ? "scheduled" : r.state;
    const { finishedAt, result, runMs, node, ...rest } = r;
    const attemptHistory = attemptsOf().all(id);
    // A kept completed record ends its story with the attempt that completed it.
    if (finishedAt !== null) attemptHistory.push(completedAttempt(r.attempts, finishedAt, runMs, node));
    return { ...rest, state, ...(finishedAt !== null && { finishedAt, result }), attemptHistory };
  });

  // ---- stats, counts: one grouped query per table ----
  const grouped = prepare<StatsRow, [now: number, now: number, now: number]>(`
    SELECT 'pending' AS state, type, sum(run_at <= ?) AS n, sum(run_at > ?) AS later,
           min(CASE WHEN run_at <= ? THEN run_at END) AS oldest
      FROM pending_jobs GROUP BY type
    UNION ALL SELECT 'inflight', type, count(*), 0, NULL FROM inflight_jobs GROUP BY type
    UNION ALL SELECT 'dead', type, count(*), 0, NULL FROM dead_jobs GROUP BY type
    UNION ALL SELECT 'completed', type, count(*), 0, NULL FROM completed_jobs GROUP BY type`);
  const stats = op("stats", (now) => statsFromRows(grouped().all(now, now, now)));
  const tableCounts = prepare<StoreCounts, []>(`
    SELECT (SELECT count(*) FROM pending_jobs) AS pending, (SELECT count(*) FROM inflight_jobs) AS inflight,
           (SELECT count(*) FROM dead_jobs) AS dead`);
  const counts = op("counts", () => tableCounts().get() ?? { pending: 0, inflight: 0, dead: 0 });

  // ---- cancelPending ----
  const deletePending = prepare<never, [id: number]>("DELETE FROM pending_jobs WHERE id = ?");
  const cancelPendingTx = db.transaction((ids: number[]) => ids.map((id) => removed(deletePending().run(id).changes, id)));
  const cancelPending = op("cancelPending", (ids) => (ids.length === 0 ? [] : cancelPendingTx.immediate(ids)));

  // ---- retryDead, retryDeadOfType: dead → pending, attempts 0, due at `now` ----
  const reviveDead = prepare<PendingEntry, [runAt: number, id: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS}, ${CARRY_COLS})
    SELECT id, type, payload, priority, 0, max_attempts, timeout_ms, ?, created_at, last_error, ${REVIVED_CARRY}
    FROM dead_jobs WHERE id = ?
    RETURNING ${ENTRY_COLS}`);
  const deleteDeadRow = prepare<never, [id: number]>("DELETE FROM dead_jobs WHERE id = ?");
  const revive = (ids: number[], now: number) => moveEach(ids, (id) => reviveDead().get(now, id), deleteDeadRow);
  const retryDeadTx = db.transaction((ids: number[], now: number) => revive(ids, now));
  const retryDead = op("retryDead", (ids, now) => (ids.length === 0 ? [] : retryDeadTx.immediate(ids, now)));
  const deadIdsOfType = prepare<{ id: number }, [type: string, failedBy: number, limit: number]>(
    "SELECT id FROM dead_jobs WHERE type = ? AND failed_at <= ? ORDER BY id LIMIT ?");
  const retryDeadOfTypeTx = db.transaction((type: string, now: number, limit: number) =>
    revive(deadIdsOfType().all(type, now, limit).map((r) => r.id), now));
  const retryDeadOfType = op("retryDeadOfType", (type, now, limit) => retryDeadOfTypeTx.immediate(type, now, limit));

  // ---- deleteDead, deleteDeadOfType: gone for good, and their keys with them ----
  const deleteDeadTx = db.transaction((ids: number[]) => ids.map((id) => removed(deleteDeadRow().run(id).changes, id)));
  const deleteDead = op("deleteDead", (ids) => (ids.length === 0 ? [] : deleteDeadTx.immediate(ids)));
  const deadIdsOfTypeAll = prepare<{ id: number }, [type: string, limit: number]>(
    "SELECT id FROM dead_jobs WHERE type = ? ORDER BY id LIMIT ?");
  const deleteDeadOfTypeTx = db.transaction((type: string, limit: number) => {
    const ids = deadIdsOfTypeAll().all(type, limit).map((r) => r.id);
    for (const id of ids) removed(deleteDeadRow().run(id).changes, id);
    return ids.length;
  });
  const deleteDeadOfType = op("deleteDeadOfType", (type, limit) => deleteDeadOfTypeTx.immediate(type, limit));

  return { get, stats, counts, cancelPending, retryDead, retryDeadOfType, deleteDead, deleteDeadOfType };
}
