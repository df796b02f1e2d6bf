// admin.ts: the PostgreSQL store's operator reads and actions (a job's view, stats, cancelling pending
// jobs, retrying and deleting dead letters; listings are listing.ts's) and the table counts tests
// read. Never touches inflight rows: cancelling a running attempt is the pool's fenced
// completeCancelled (settle.ts).
import type { Admin, StoreTestHooks } from "../store.ts";
import type { AttemptOutcome, AttemptRecord, DeadQuery, JobState, JobView, StoreCounts, StatsRow } from "../rows.ts";
import { completedAttempt, statsFromRows } from "../rows.ts";
import type { Connection, Methods } from "./connection.ts";
import { CARRY_COLS, REVIVED_CARRY, ENTRY_COLS, JOB_COLS, at, ms, toClaimed, toEntry, type EntryRow, type JobRow } from "./sql.ts";

/** The tail of a statement whose CTE `moved` holds dead rows an operator retries: pending, attempts 0, due at `runAt`. */
const FROM_DEAD = (runAt: string) => `
  INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS})
  SELECT id, type, payload, priority, 0, max_attempts, timeout_ms, ${runAt}, created_at, last_error, ${REVIVED_CARRY}
  FROM moved
  RETURNING ${ENTRY_COLS}`;

type ViewRow = JobRow & {
  state: string; owner: string | null; lease_until: number | null; failed_at: number | null; finished_at: number | null; result: string | null;
  run_ms: number | null; node: string | null;
};

type AttemptRow = {
  job_id: number; attempt: number; node: string | null; started_at: number | null; ended_at: number; outcome: AttemptOutcome;
  status: number | null; exit_code: number | null; error: string | null;
};

const toAttempt = (r: AttemptRow): AttemptRecord => ({
  attempt: r.attempt, node: r.node, startedAt: r.started_at, endedAt: r.ended_at, outcome: r.outcome,
  status: r.status, exitCode: r.exit_code, error: r.error,
});

/** The attempts on record of these jobs, oldest first, by job id (GET /jobs/:id and the listings). */
export async function attemptHistories(db: Connection, jobIds: number[]): Promise<Map<number, AttemptRecord[]>> {
  const out = new Map<number, AttemptRecord[]>();
  if (jobIds.length === 0) return out;
  const rows = await db.query<AttemptRow>(`
    SELECT job_id, attempt, node, ${ms("started_at")} AS started_at, ${ms("ended_at")} AS ended_at, outcome, status, exit_code, error
    FROM job_attempts WHERE job_id = ANY($1::bigint[]) ORDER BY job_id, seq`, [jobIds]);
  for (const r of rows) {
    const list = out.get(r.job_id) ?? [];
    list.push(toAttempt(r));
    out.set(r.job_id, list);
  }
  return out;
}

export function createAdmin(db: Connection): Methods<Omit<Admin, "listJobs" | "listDead"> & Pick<StoreTestHooks, "counts">> {
  /** Delete rows by id and release their idempotency keys, in one statement; result[i] says whether ids[i] was there. */
  async function deleteReleasingKeys(table: "pending_jobs" | "dead_jobs", idList: number[]): Promise<boolean[]> {
    if (idList.length === 0) return [];
    const rows = await db.query<{ id: number }>(`
      WITH done AS (DELETE FROM ${table} WHERE id = ANY($1::bigint[]) RETURNING id),
      released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id),
      forgotten AS (DELETE FROM job_attempts a USING done WHERE a.job_id = done.id)
      SELECT id FROM done`, [idList]);
    const done = new Set(rows.map((r) => r.id));
    return idList.map((id) => done.has(id));
  }

  return {
    get: db.op("get", async (id: number, now: number) => {
      const rows = await db.query<ViewRow>(`
        SELECT 'pending' AS state, ${JOB_COLS}, NULL::text AS owner, NULL::float8 AS lease_until, NULL::float8 AS failed_at,
               NULL::float8 AS finished_at, NULL::text AS result, NULL::int4 AS run_ms, NULL::text AS node
          FROM pending_jobs WHERE id = $1
        UNION ALL
        SELECT 'inflight', ${JOB_COLS}, owner, ${ms("lease_until")}, NULL, NULL, NULL, NULL, NULL FROM inflight_jobs WHERE id = $1
        UNION ALL
        SELECT 'dead', ${JOB_COLS}, NULL, NULL, ${ms("failed_at")}, NULL, NULL, NULL, NULL FROM dead_jobs WHERE id = $1
        UNION ALL
        SELECT 'completed', id, type, 'null', priority, attempts, max_attempts, NULL, ${ms("run_at")}, ${ms("created_at")}, NULL,
               NULL, NULL, 0, NULL, NULL, NULL, NULL, ${ms("finished_at")}, result, run_ms, node
          FROM completed_jobs WHERE id = $1`, [id]);
      const r = rows[0];
      if (!r) return null;
      const state = (r.state === "pending" && r.run_at > now ? "scheduled" : r.state) as JobState;
      const history = (await attemptHistories(db, [id])).get(id) ?? [];
      // A kept completed record ends its story with the attempt that completed it.
      if (r.finished_at !== null) history.push(completedAttempt(r.attempts, r.finished_at, r.run_ms, r.node));
      const view: JobView = {
        ...toClaimed(r), state, owner: r.owner, leaseUntil: r.lease_until, failedAt: r.failed_at,
        ...(r.finished_at !== null && { finishedAt: r.finished_at, result: r.result }),
        attemptHistory: history,
      };
      return view;
    }),

    stats: db.op("stats", async (now: number) => {
      const rows = await db.query<StatsRow>(`
        SELECT 'pending' AS state, type, count(*) FILTER (WHERE run_at <= ${at("$1")})::int AS n,
               count(*) FILTER (WHERE run_at > ${at("$1")})::int AS later,
               min(${ms("run_at")}) FILTER (WHERE run_at <= ${at("$1")}) AS oldest
          FROM pending_jobs GROUP BY type
        UNION ALL SELECT 'inflight', type, count(*)::int, 0, NULL FROM inflight_jobs GROUP BY type
        UNION ALL SELECT 'dead', type, count(*)::int, 0, NULL FROM dead_jobs GROUP BY type
        UNION ALL SELECT 'completed', type, count(*)::int, 0, NULL FROM completed_jobs GROUP BY type`,
        [now]);
      return statsFromRows(rows);
    }),

    cancelPending: db.op("cancelPending", (pendingIds: number[]) => deleteReleasingKeys("pending_jobs", pendingIds)),

    retryDead: db.op("retryDead", async (deadIds: number[], now: number) => {
      if (deadIds.length === 0) return [];
      const rows = await db.query<EntryRow>(`
        WITH moved AS (DELETE FROM dead_jobs WHERE id = ANY($1::bigint[]) RETURNING *)
        ${FROM_DEAD(at("$2"))}`, [deadIds, now]);
      return rows.map(toEntry);
    }),

    retryDeadOfType: db.op("retryDeadOfType", async (type: string, now: number, limit: number) => {
      // SKIP LOCKED: two operators retrying one type at once split the rows instead of queueing.
      const rows = await db.query<EntryRow>(`
        WITH picked AS (
          SELECT id FROM dead_jobs WHERE type = $1 AND failed_at <= ${at("$2")}
          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED),
        moved AS (DELETE FROM dead_jobs d USING picked p WHERE d.id = p.id RETURNING d.*)
        ${FROM_DEAD(at("$2"))}`, [type, now, limit]);
      return rows.map(toEntry);
    }),

    deleteDead: db.op("deleteDead", (deadIds: number[]) => deleteReleasingKeys("dead_jobs", deadIds)),

    deleteDeadOfType: db.op("deleteDeadOfType", async (type: string, limit: number) => {
      const rows = await db.query<{ id: number }>(`
        WITH done AS (
          DELETE FROM dead_jobs WHERE id IN (
            SELECT id FROM dead_jobs WHERE type = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING id),
        released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id),
        forgotten AS (DELETE FROM job_attempts a USING done WHERE a.job_id = done.id)
        SELECT id FROM done`, [type, limit]);
      return rows.length;
    }),

    counts: db.op("counts", async (): Promise<StoreCounts> => {
      const [r] = await db.query<{ pending: number; inflight: number; dead: number }>(`
        SELECT (SELECT count(*) FROM pending_jobs) AS pending, (SELECT count(*) FROM inflight_jobs) AS inflight,
               (SELECT count(*) FROM dead_jobs) AS dead`);
      return r ?? { pending: 0, inflight: 0, dead: 0 };
    }),
  };
}
