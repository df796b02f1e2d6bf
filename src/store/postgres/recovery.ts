// recovery.ts: the PostgreSQL store's take-back of work nobody runs (expired leases, this node's rows
// from its previous run), the start-up stream that rebuilds the heaps, and the pruning of completed
// records, and the dead-lettering of pending jobs past their start-by deadline. It never touches a live lease; when to run any of it is the reaper's and start-up's call.
import type { Recovery } from "../store.ts";
import { EXPIRED_ERROR, type ExpiredJob } from "../rows.ts";
import type { Connection, Methods } from "./connection.ts";
import { CARRY_COLS, ENTRY_COLS, RECORD_ATTEMPTS, at, toEntry, type EntryRow } from "./sql.ts";

/**
 * The tail of a statement whose CTE `moved` holds inflight rows taken back without a verdict
 * (lease expired, process restarted). The interrupted attempt stays counted, so a job that kills
 * its process on every run is dead-lettered after max_attempts runs instead of looping.
 */
const HAND_BACK = (runAt: string, error: string, failedAt: string) => `,
  to_dead AS (
    INSERT INTO dead_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, failed_at, ${CARRY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
           ${error} || ' on the final attempt', ${failedAt}, ${CARRY_COLS}
    FROM moved WHERE attempts >= max_attempts)
  INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS})
  SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, ${runAt}, created_at, coalesce(last_error, ${error}), ${CARRY_COLS}
  FROM moved WHERE attempts < max_attempts
  RETURNING ${ENTRY_COLS}`;

export function createRecovery(db: Connection): Methods<Omit<Recovery, "pruneBuckets">> {
  return {
    reapExpired: db.op("reapExpired", async (now: number, limit: number) => {
      // SKIP LOCKED: a row whose completion or heartbeat holds the lock is not expired work;
      // the outer lease check re-reads the newest row version, so a fresh lease is never reaped.
      // A lease must have ended by the server's own clock too, so no node whose clock (or clock
      // correction) runs ahead can ever take another node's live job.
      const rows = await db.query<EntryRow>(`
        WITH expired AS (
          SELECT id FROM inflight_jobs WHERE lease_until < least(${at("$1")}, clock_timestamp())
          ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED),
        moved AS (
          DELETE FROM inflight_jobs j USING expired e
          WHERE j.id = e.id AND j.lease_until < least(${at("$1")}, clock_timestamp())
          RETURNING j.*)
        ${RECORD_ATTEMPTS("'lease_expired'", "$1", "NULL::int4", "NULL::int4", "'lease expired'")}
        ${HAND_BACK(at("$1"), "'lease expired'", at("$1"))}`,
        [now, limit]);
      return rows.map(toEntry);
    }),

    expirePending: db.op("expirePending", async (now: number, limit: number) => {
      // pending_jobs_start_by_idx holds only jobs with a deadline, soonest first; SKIP LOCKED leaves
      // rows a claim is moving to that claim (which expires them itself when it must).
      return await db.query<ExpiredJob>(`
        WITH picked AS (
          SELECT id FROM pending_jobs WHERE start_by < ${at("$1")}
          ORDER BY start_by LIMIT $2 FOR UPDATE SKIP LOCKED),
        moved AS (DELETE FROM pending_jobs p USING picked WHERE p.id = picked.id RETURNING p.*)
        INSERT INTO dead_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, failed_at, ${CARRY_COLS})
        SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, $3, ${at("$1")}, ${CARRY_COLS}
        FROM moved
        RETURNING id, type`, [now, limit, EXPIRED_ERROR]);
    }),

    recoverOwner: db.op("recoverOwner", async (owner: string, now: number) => {
      const rows = await db.query<EntryRow>(`
        WITH moved AS (DELETE FROM inflight_jobs WHERE owner = $1 RETURNING *)
        ${RECORD_ATTEMPTS("'node_restarted'", "$2", "NULL::int4", "NULL::int4", "'interrupted by a restart'")}
        ${HAND_BACK("run_at", "'interrupted by a restart'", at("$2"))}`,
        [owner, now]);
      return rows.map(toEntry);
    }),

    streamPending: db.exempt("the start-up stream reads all of pending_jobs, batch after batch, for as long as that takes",
      async function* (batchSize: number) {
        for await (const rows of db.cursor<EntryRow>(`SELECT ${ENTRY_COLS} FROM pending_jobs`, batchSize)) yield rows.map(toEntry);
      }),

    pruneCompleted: db.op("pruneCompleted", async (now: number, limit: number, legacyKeepMs: number) => {
      const rows = await db.query<{ id: number }>(`
        WITH expired AS (
          SELECT id FROM completed_jobs WHERE expires_at <= ${at("$1")}
          ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED),
        legacy AS (
          SELECT id FROM completed_jobs
          WHERE expires_at IS NULL AND finished_at <= ${at("$3")}
          ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED),
        done AS (
          DELETE FROM completed_jobs WHERE id IN (SELECT id FROM expired UNION ALL SELECT id FROM legacy LIMIT $2)
          RETURNING id),
        released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id),
        forgotten AS (DELETE FROM job_attempts a USING done WHERE a.job_id = done.id)
        SELECT id FROM done`, [now, limit, now - legacyKeepMs]);
      return rows.length;
    }),
  };
}
