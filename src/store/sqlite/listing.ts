// listing.ts: the embedded store's operator listings: jobs of one state (and dead letters) in id
// order, a page at a time by keyset, within a budget of payload bytes. Reads only; no moves here.
import { completedAttempt } from "../rows.ts";
import type { AttemptRecord, DeadQuery, JobQuery, JobState, JobView, ListOrder } from "../rows.ts";
import type { Connection, Part, Prepared } from "./connection.ts";
import { JOB_COLS } from "./tables.ts";

type ListedRow = Omit<JobView, "state" | "finishedAt" | "result"> & { finishedAt: number | null; result: string | null; runMs: number | null; node: string | null };
type Params = [cursor: number, now: number, type: string | null, limit: number, maxBytes: number | null];

/** Where each state's jobs live, what else selects them, and the columns they are shown with. */
const SOURCES: Record<JobState, { table: string; where: string; cols: string; bytes: string }> = {
  pending: {
    table: "pending_jobs", where: "run_at <= ?2", bytes: "length(CAST(payload AS BLOB))",
    cols: `${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, NULL AS failedAt, NULL AS finishedAt, NULL AS result, NULL AS runMs, NULL AS node`,
  },
  scheduled: {
    table: "pending_jobs", where: "run_at > ?2", bytes: "length(CAST(payload AS BLOB))",
    cols: `${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, NULL AS failedAt, NULL AS finishedAt, NULL AS result, NULL AS runMs, NULL AS node`,
  },
  inflight: {
    table: "inflight_jobs", where: "1", bytes: "length(CAST(payload AS BLOB))",
    cols: `${JOB_COLS}, owner, lease_until AS leaseUntil, NULL AS failedAt, NULL AS finishedAt, NULL AS result, NULL AS runMs, NULL AS node`,
  },
  dead: {
    table: "dead_jobs", where: "1", bytes: "length(CAST(payload AS BLOB))",
    cols: `${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, failed_at AS failedAt, NULL AS finishedAt, NULL AS result, NULL AS runMs, NULL AS node`,
  },
  // A completed record keeps no payload: it reads as null, as get() shows it.
  completed: {
    table: "completed_jobs", where: "1", bytes: "4",
    cols: `id, type, 'null' AS payload, priority, attempts, max_attempts AS maxAttempts, NULL AS timeoutMs, run_at AS runAt,
      created_at AS createdAt, NULL AS lastError, NULL AS key, NULL AS startBy, 0 AS throttles, NULL AS trace,
      NULL AS owner, NULL AS leaseUntil, NULL AS failedAt, finished_at AS finishedAt, result, run_ms AS runMs, node`,
  },
};

/**
 * One listing's statement: the page first (the cursor, LIMIT), then a running total of its payload
 * bytes, kept while a row starts within the budget. The type is a statement of its own, so a typed
 * listing of dead jobs walks the (type, id) index.
 */
function listingSql(state: JobState, order: ListOrder, typed: boolean): string {
  const s = SOURCES[state];
  const dir = order === "oldest" ? "ASC" : "DESC";
  const past = order === "oldest" ? ">" : "<";
  return `
    SELECT ${s.cols} FROM (
      SELECT *, sum(bytes) OVER (ORDER BY id ${dir}) - bytes AS bytes_before FROM (
        SELECT *, ${s.bytes} AS bytes FROM ${s.table}
        WHERE id ${past} ?1 AND ${s.where}${typed ? " AND type = ?3" : ""} ORDER BY id ${dir} LIMIT ?4))
    WHERE ?5 IS NULL OR bytes_before <= ?5 ORDER BY id ${dir}`;
}

/** The cursor as the statement compares it: 0 (from the first) is past every id in either order. */
const cursorOf = (afterId: number | undefined, order: ListOrder) =>
  afterId !== undefined && afterId > 0 ? afterId : order === "oldest" ? 0 : Number.MAX_SAFE_INTEGER;

export function createListing({ conn }: { conn: Connection }): Part<"listJobs" | "listDead"> {
  const statements = new Map<string, Prepared<ListedRow, Params>>();
  for (const state of Object.keys(SOURCES) as JobState[]) {
    for (const order of ["oldest", "newest"] as const) {
      for (const typed of [false, true]) statements.set(`${state} ${order} ${typed}`, conn.prepare<ListedRow, Params>(listingSql(state, order, typed)));
    }
  }

  // The page's attempt histories in one statement (the ids as a JSON array), grouped by job here.
  const attemptsOfPage = conn.prepare<AttemptRecord & { jobId: number }, [ids: string]>(`
    SELECT job_id AS jobId, attempt, node, started_at AS startedAt, ended_at AS endedAt, outcome, status, exit_code AS exitCode, error
    FROM job_attempts WHERE job_id IN (SELECT value FROM json_each(?)) ORDER BY job_id, seq`);

  function list(query: JobQuery, now: number): JobView[] {
    const statement = statements.get(`${query.state} ${query.order} ${query.type !== undefined}`)!;
    const rows = statement().all(cursorOf(query.afterId, query.order), now, query.type ?? null, query.limit, query.maxBytes ?? null);
    const histories = new Map<number, AttemptRecord[]>();
    if (rows.length > 0) {
      for (const { jobId, ...a } of attemptsOfPage().all(JSON.stringify(rows.map((r) => r.id)))) {
        const list = histories.get(jobId);
        if (list === undefined) histories.set(jobId, [a]);
        else list.push(a);
      }
    }
    return rows.map(({ finishedAt, result, runMs, node, ...rest }): JobView => {
      const attemptHistory = histories.get(rest.id) ?? [];
      // As get() shows it: a kept completed record ends its story with the attempt that completed it.
      if (finishedAt !== null) attemptHistory.push(completedAttempt(rest.attempts, finishedAt, runMs, node));
      return { ...rest, state: query.state, ...(finishedAt !== null && { finishedAt, result }), attemptHistory };
    });
  }

  return {
    listJobs: conn.op("listJobs", list),
    listDead: conn.op("listDead", (query: DeadQuery) => list({ ...query, state: "dead", order: query.order ?? "oldest" }, 0)),
  };
}
