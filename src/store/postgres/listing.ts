// listing.ts: the PostgreSQL store's operator listings: jobs of one state (and dead letters) in id
// order, a page at a time by keyset, within a budget of payload bytes. Reads only; no moves here.
import { completedAttempt } from "../rows.ts";
import type { Admin } from "../store.ts";
import type { DeadQuery, JobQuery, JobState, JobView, ListOrder } from "../rows.ts";
import type { Connection, Methods } from "./connection.ts";
import { JOB_COLS, at, ms, toClaimed, type JobRow } from "./sql.ts";
import { attemptHistories } from "./admin.ts";

type ListedRow = JobRow & {
  owner: string | null; lease_until: number | null; failed_at: number | null; finished_at: number | null; result: string | null;
  run_ms: number | null; node: string | null;
};

const LIVE_BYTES = "octet_length(payload::text)";

/** Where each state's jobs live, what else selects them (`now`: a placeholder for now), and the columns they are shown with. */
const SOURCES: Record<JobState, { table: string; where?: (now: string) => string; cols: string; bytes: string }> = {
  pending: {
    table: "pending_jobs", where: (now) => `run_at <= ${at(now)}`, bytes: LIVE_BYTES,
    cols: `${JOB_COLS}, NULL::text AS owner, NULL::float8 AS lease_until, NULL::float8 AS failed_at, NULL::float8 AS finished_at, NULL::text AS result, NULL::int4 AS run_ms, NULL::text AS node`,
  },
  scheduled: {
    table: "pending_jobs", where: (now) => `run_at > ${at(now)}`, bytes: LIVE_BYTES,
    cols: `${JOB_COLS}, NULL::text AS owner, NULL::float8 AS lease_until, NULL::float8 AS failed_at, NULL::float8 AS finished_at, NULL::text AS result, NULL::int4 AS run_ms, NULL::text AS node`,
  },
  inflight: {
    table: "inflight_jobs", bytes: LIVE_BYTES,
    cols: `${JOB_COLS}, owner, ${ms("lease_until")} AS lease_until, NULL::float8 AS failed_at, NULL::float8 AS finished_at, NULL::text AS result, NULL::int4 AS run_ms, NULL::text AS node`,
  },
  dead: {
    table: "dead_jobs", bytes: LIVE_BYTES,
    cols: `${JOB_COLS}, NULL::text AS owner, NULL::float8 AS lease_until, ${ms("failed_at")} AS failed_at, NULL::float8 AS finished_at, NULL::text AS result, NULL::int4 AS run_ms, NULL::text AS node`,
  },
  // A completed record keeps no payload: it reads as null, as get() shows it.
  completed: {
    table: "completed_jobs", bytes: "4",
    cols: `id, type, 'null' AS payload, priority, attempts, max_attempts, NULL::int AS timeout_ms, ${ms("run_at")} AS run_at,
      ${ms("created_at")} AS created_at, NULL::text AS last_error, NULL::text AS key, NULL::float8 AS start_by, 0 AS throttles, NULL::text AS trace,
      NULL::text AS owner, NULL::float8 AS lease_until, NULL::float8 AS failed_at, ${ms("finished_at")} AS finished_at, result, run_ms, node`,
  },
};

interface Listing {
  text: string;
  args(query: JobQuery, now: number): unknown[];
}

/**
 * One listing's statement: the page first (the cursor, LIMIT), then a running total of its payload
 * bytes, kept while a row starts within the budget. It takes only the parameters it uses (now for
 * pending and scheduled, the type when typed), and the type is a statement of its own (no
 * `$n IS NULL OR …`), so a generic plan of a typed listing of dead jobs still walks the (type, id) index.
 */
function listing(state: JobState, order: ListOrder, typed: boolean): Listing {
  const s = SOURCES[state];
  const dir = order === "oldest" ? "ASC" : "DESC";
  const past = order === "oldest" ? ">" : "<";
  const parts: ((q: JobQuery, now: number) => unknown)[] = [];
  const param = (value: (q: JobQuery, now: number) => unknown) => `$${parts.push(value)}`;
  const where = [`id ${past} ${param((q) => cursorOf(q.afterId, order))}::bigint`];
  if (s.where) where.push(s.where(param((_q, now) => now)));
  if (typed) where.push(`type = ${param((q) => q.type)}::text`);
  const limit = param((q) => q.limit);
  const budget = param((q) => q.maxBytes ?? null);
  const text = `
    SELECT ${s.cols} FROM (
      SELECT *, sum(bytes) OVER (ORDER BY id ${dir}) - bytes AS bytes_before FROM (
        SELECT *, ${s.bytes} AS bytes FROM ${s.table}
        WHERE ${where.join(" AND ")} ORDER BY id ${dir} LIMIT ${limit}) page) sized
    WHERE ${budget}::bigint IS NULL OR bytes_before <= ${budget} ORDER BY id ${dir}`;
  return { text, args: (q, now) => parts.map((p) => p(q, now)) };
}

/** The cursor as the statement compares it: 0 (from the first) is past every id in either order. */
const cursorOf = (afterId: number | undefined, order: ListOrder) =>
  afterId !== undefined && afterId > 0 ? afterId : order === "oldest" ? 0 : Number.MAX_SAFE_INTEGER;

export function createListing(db: Connection): Methods<Pick<Admin, "listJobs" | "listDead">> {
  const listings = new Map<string, Listing>();
  for (const state of Object.keys(SOURCES) as JobState[]) {
    for (const order of ["oldest", "newest"] as const) {
      for (const typed of [false, true]) listings.set(`${state} ${order} ${typed}`, listing(state, order, typed));
    }
  }

  async function list(query: JobQuery, now: number): Promise<JobView[]> {
    const { text, args } = listings.get(`${query.state} ${query.order} ${query.type !== undefined}`)!;
    const rows = await db.query<ListedRow>(text, args(query, now));
    const history = await attemptHistories(db, rows.map((r) => r.id));
    return rows.map((r): JobView => ({
      ...toClaimed(r), state: query.state, owner: r.owner, leaseUntil: r.lease_until, failedAt: r.failed_at,
      ...(r.finished_at !== null && { finishedAt: r.finished_at, result: r.result }),
      // As get() shows it: a kept completed record ends its story with the attempt that completed it.
      attemptHistory: r.finished_at === null ? history.get(r.id) ?? []
        : [...history.get(r.id) ?? [], completedAttempt(r.attempts, r.finished_at, r.run_ms, r.node)],
    }));
  }

  return {
    listJobs: db.op("listJobs", list),
    listDead: db.op("listDead", (query: DeadQuery) => list({ ...query, state: "dead", order: query.order ?? "oldest" }, 0)),
  };
}
