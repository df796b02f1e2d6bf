// claim-moves.ts: the PostgreSQL statements that move claimed rows pending → inflight: by id (rows of
// paused types held, rows past their deadline dead-lettered as expired), and by id with flow
// control's rate and per-key limits weighed in the same statement or transaction (flow-plan.ts).
// Which ids to claim is the caller's decision; claims.ts offers these as the store's verbs.
import { EXPIRED_ERROR, type ClaimResult, type ClaimedJob, type HeldJob } from "../rows.ts";
import type { Queries } from "./connection.ts";
import { bucketName, needs, planStarts, type Candidate, type FlowLimits } from "../flow-plan.ts";
import { CARRY_COLS, JOB_COLS, JOB_COLS_STORED_PAYLOAD, JOB_COL_NAMES, at, ms, toClaimed, type JobRow } from "./sql.ts";

/**
 * The tail of claimNext, whose CTE `moved` holds the pending rows it took: they enter inflight
 * with this attempt counted, picked at `pickedAtMs` and leased to `owner` until `untilMs` (SQL
 * expressions for epoch ms and the owner), and come back as claimed jobs.
 */
export const CLAIM_INTO_INFLIGHT = (pickedAtMs: string, untilMs: string, owner: string) => `
  INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at,
                             created_at, last_error, picked_at, lease_until, owner, ${CARRY_COLS})
  SELECT id, type, payload, priority, attempts + 1, max_attempts, timeout_ms, run_at, created_at, last_error,
         ${at(pickedAtMs)}, ${at(untilMs)}, ${owner}, ${CARRY_COLS}
  FROM moved
  RETURNING ${JOB_COLS}`;

/** A pending row that may start at `now` (epoch ms): its type is not paused and its deadline has not passed. */
export const STARTABLE = (now: string) =>
  `type <> ALL(ARRAY(SELECT type FROM jobqueue_paused)) AND (start_by IS NULL OR start_by >= ${at(now)})`;

/**
 * The columns of a claim's answer: what kind of row, then a job's columns (JOB_COLS). NULL
 * (started): moved to inflight, its throttles NULL when 0; "expired": moved to dead; "held": a
 * paused type's; "rate": held by its type's rate, the wait until its next start in the start_by column.
 */
type ClaimRow = JobRow & { kind: null | "expired" | "held" | "rate" };

/**
 * The claim statement over ids $1 at $2 (ms), leased until $3 to $4, $5 the expired error. One
 * statement: due rows of types not paused leave pending; those past their deadline go to dead as
 * expired, the rest to inflight; due rows of paused types stay and come back as held. With nothing
 * paused (the usual case) the paused list is one look at an empty table, and the held rows' probe
 * is skipped by a one-time filter. The due check compares epoch ms, an expression no index covers,
 * so the only index path is the primary key (written as run_at <= …, a generic plan made while
 * pending_jobs was small took pending_jobs_run_at_idx instead and filtered every due row;
 * tests/postgres-plans.test.ts holds the claim to the key). The other kinds' rows are padded with
 * NULLs to JOB_COLS' columns (id, type, …, key at the 11th, start_by at the 12th, trace last): keep them in step.
 *
 * `weighed`: CTEs placed after `paused` that weigh limited types, and the SQL for those types and
 * for the ids among them that may start; a limited type's row then moves only when allowed (or to
 * dead when expired), never waiting for a row another claim holds.
 */
function claimStatement(weighed?: { ctes: string; limited: string; allowed: string; extraRows?: string }): string {
  return `
    WITH paused AS MATERIALIZED (SELECT type FROM jobqueue_paused),
    ${weighed ? weighed.ctes : ""}
    moved AS (
      DELETE FROM pending_jobs WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8
        AND (type <> ALL(ARRAY(SELECT type FROM paused)) OR ${ms("start_by")} < $2::float8)
        ${weighed ? `AND (type <> ALL(${weighed.limited}) OR id = ANY(${weighed.allowed}) OR ${ms("start_by")} < $2::float8)` : ""}
      RETURNING *),
    expired AS (
      INSERT INTO dead_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, failed_at, ${CARRY_COLS})
      SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, $5, ${at("$2")}, ${CARRY_COLS}
      FROM moved WHERE ${ms("start_by")} < $2::float8
      RETURNING id, type),
    started AS (
      INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at,
                                 created_at, last_error, picked_at, lease_until, owner, ${CARRY_COLS})
      SELECT id, type, payload, priority, attempts + 1, max_attempts, timeout_ms, run_at, created_at, last_error,
             ${at("$2")}, ${at("$3")}, $4, ${CARRY_COLS}
      FROM moved WHERE start_by IS NULL OR ${ms("start_by")} >= $2::float8
      RETURNING ${JOB_COLS_STORED_PAYLOAD})
    -- The payload stays as stored until the rows leave: cast inside the CTE, every payload was
    -- expanded into the CTE's store first (4 MB for 256 jobs of 16 KiB, past work_mem; 28 ms a
    -- claim instead of 17 in psql).
    -- A started row's kind is NULL and a throttle count of 0 comes as NULL: each value that is not
    -- NULL costs the client a string to decode, and these two are on every claimed job.
    SELECT NULL AS kind, ${JOB_COL_NAMES.replace("payload", "payload::text AS payload").replace("throttles", "NULLIF(throttles, 0) AS throttles")} FROM started
    UNION ALL
    SELECT 'expired', id, type, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM expired
    UNION ALL
    SELECT 'held', id, type, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, key, NULL, NULL, NULL FROM pending_jobs
    WHERE EXISTS (SELECT 1 FROM paused)
      AND id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8 AND type = ANY(ARRAY(SELECT type FROM paused))
      AND (start_by IS NULL OR ${ms("start_by")} >= $2::float8)
    ${weighed?.extraRows ?? ""}`;
}

/** A claim statement's rows as a ClaimResult (rate holds carry their wait in the start_by column). */
function toResult(rows: ClaimRow[]): ClaimResult {
  const jobs: ClaimedJob[] = [];
  const held: HeldJob[] = [];
  const expired: number[] = [];
  for (const r of rows) {
    if (r.kind === null) jobs.push(toClaimed(r));
    else if (r.kind === "expired") expired.push(r.id);
    else if (r.kind === "held") held.push({ id: r.id, type: r.type, key: r.key, reason: "paused", retryInMs: null });
    else held.push({ id: r.id, type: r.type, key: null, reason: "rate_limit", retryInMs: r.start_by === null ? null : Number(r.start_by) });
  }
  return { jobs, held, expired };
}

/** Claim the given ids: the plain claim, or (with `weighed`) only the allowed ones among the limited types. */
export async function claimByIds(q: Queries, claimIds: number[], owner: string, now: number, leaseMs: number,
  weighed?: { limited: string[]; allowed: number[] }): Promise<ClaimResult> {
  const params: unknown[] = [claimIds, now, now + leaseMs, owner, EXPIRED_ERROR];
  if (weighed === undefined) return toResult(await q.query<ClaimRow>(claimStatement(), params));
  const sql = claimStatement({ ctes: "", limited: "$6::text[]", allowed: "$7::bigint[]" });
  return toResult(await q.query<ClaimRow>(sql, [...params, weighed.limited, weighed.allowed]));
}

/**
 * A claim that weighs rate and per-key limits, in one transaction: lock the startable candidates of
 * limited types (skipping rows another claim holds), then their buckets in one sorted order (so
 * claims on several nodes queue on a bucket instead of deadlocking), count each limited key's
 * running jobs once its bucket is held (a claim that committed before sees its rows), decide on the
 * database's clock (one clock for every node), write the buckets back and move what may start.
 */
export async function claimWeighed(tx: Queries, claimIds: number[], owner: string, now: number, leaseMs: number, limits: FlowLimits): Promise<ClaimResult> {
  const limited = [...limits.keys()];
  const cands = await tx.query<Candidate & { at: number }>(`
    SELECT id, type, key, ${ms("clock_timestamp()")} AS at FROM pending_jobs
    WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8 AND type = ANY($3::text[]) AND ${STARTABLE("$2")}
    FOR UPDATE SKIP LOCKED`, [claimIds, now, limited]);
  if (cands.length === 0) return await claimByIds(tx, claimIds, owner, now, leaseMs, { limited, allowed: [] });
  // The claim's order is the heap's: most urgent first.
  const rank = new Map(claimIds.map((id, i) => [id, i]));
  cands.sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
  let dbNow = cands[0]!.at;
  const { buckets, keys } = needs(cands, limits);
  const tats = new Map<string, number>();
  if (buckets.length > 0) {
    // ON CONFLICT DO UPDATE locks an existing row and returns it; rows go in the order given. The
    // clock is read again once the buckets are held: a claim that waited here for another one must
    // decide at its own later time, or the tat the other moved on would cost it a start.
    const rows = await tx.query<{ type: string; key: string; tat: number; now: number }>(`
      INSERT INTO jobqueue_buckets (type, key, tat)
      SELECT t.type, t.key, '-Infinity'::float8 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(type, key, ord) ORDER BY t.ord
      ON CONFLICT (type, key) DO UPDATE SET tat = jobqueue_buckets.tat
      RETURNING type, key, tat, ${ms("clock_timestamp()")} AS now`, [buckets.map((b) => b[0]), buckets.map((b) => b[1])]);
    for (const r of rows) {
      tats.set(bucketName(r.type, r.key), r.tat);
      dbNow = Math.max(dbNow, r.now);
    }
  }
  const running = new Map<string, number>();
  if (keys.length > 0) {
    const rows = await tx.query<{ type: string; key: string; n: number }>(`
      SELECT i.type, i.key, count(*)::int AS n FROM inflight_jobs i
      JOIN unnest($1::text[], $2::text[]) AS k(type, key) ON i.type = k.type AND i.key = k.key
      GROUP BY i.type, i.key`, [keys.map((k) => k[0]), keys.map((k) => k[1])]);
    for (const r of rows) running.set(bucketName(r.type, r.key), r.n);
  }
  const plan = planStarts(cands, limits, tats, running, dbNow);
  if (plan.tats.size > 0) {
    const names = [...plan.tats.keys()].map((n) => n.split("\u0000") as [string, string]);
    await tx.query(`
      UPDATE jobqueue_buckets b SET tat = t.tat
      FROM unnest($1::text[], $2::text[], $3::float8[]) AS t(type, key, tat)
      WHERE b.type = t.type AND b.key = t.key`, [names.map((n) => n[0]), names.map((n) => n[1]), [...plan.tats.values()]]);
  }
  const moved = await claimByIds(tx, claimIds, owner, now, leaseMs, { limited, allowed: plan.allowed });
  return { jobs: moved.jobs, held: [...plan.held, ...moved.held], expired: moved.expired };
}

/** How long (ms) a rated claim waits in the database for a start that is at most that close. */
export const NAP_MS = 3;
/** How much before a held rate's next start the node is told to ask again (less than NAP_MS: the claim's way there). */
const NAP_LEAD_MS = 2;

/** Whether every limited type has a rate and nothing per key: one statement can weigh them. */
export const ratesOnly = (limits: FlowLimits): boolean =>
  [...limits.values()].every((l) => l.rate !== undefined && l.keyConcurrency === undefined && l.keyRate === undefined);

/** The rows the one-statement claim locks must exist: make each rate's bucket (once per limits seen). */
export async function ensureRateBuckets(q: Queries, limits: FlowLimits): Promise<void> {
  const types = [...limits.entries()].filter(([, l]) => l.rate !== undefined).map(([type]) => type).sort();
  await q.query(`
    INSERT INTO jobqueue_buckets (type, key, tat)
    SELECT t.type, '', '-Infinity'::float8 FROM unnest($1::text[]) AS t(type) ORDER BY t.type
    ON CONFLICT (type, key) DO NOTHING`, [types]);
}

/**
 * The claim of ids among which some types have a rate (and no per-key limit), in ONE statement:
 * the startable candidates of rated types are locked (rows another claim holds are skipped), then
 * each type's bucket row (FOR UPDATE, in type order: claims queue on a bucket, never deadlock; a
 * row changed meanwhile is read again as committed), and GCRA (flow-plan.ts) lets the first k of
 * each type start, k = min(wanted, ⌊(now + τ − max(tat, now)) / T⌋ + 1) on the database's clock.
 * The buckets move on by k · T, the allowed rows and every unrated id move as in claimByIds, and
 * the held come back with the wait until their type's next start, less NAP_LEAD_MS: the claim that
 * comes then finds the start due within NAP_MS and waits for it in the statement, so a backlog
 * keeps to the rate instead of losing a round trip per start. A rated type whose bucket row is
 * missing starts nothing (its jobs are held without a wait) until the row is made again.
 */
export async function claimRated(q: Queries, claimIds: number[], owner: string, now: number, leaseMs: number, limits: FlowLimits): Promise<ClaimResult> {
  const rated = [...limits.entries()].filter(([, l]) => l.rate !== undefined);
  const ctes = `
    lim AS (
      SELECT * FROM unnest($6::text[], $7::float8[], $8::float8[]) AS l(type, step, tolerance)),
    cand AS (
      SELECT p.id, p.type, row_number() OVER (PARTITION BY p.type ORDER BY array_position($1::bigint[], p.id)) AS rn
      FROM (SELECT id, type FROM pending_jobs
            WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8 AND type = ANY($6::text[])
              AND type <> ALL(ARRAY(SELECT type FROM paused)) AND (start_by IS NULL OR ${ms("start_by")} >= $2::float8)
            FOR UPDATE SKIP LOCKED) p),
    want AS (SELECT type, count(*) AS n FROM cand GROUP BY type),
    locked AS (
      SELECT b.type, b.tat FROM jobqueue_buckets b
      WHERE b.key = '' AND b.type IN (SELECT type FROM want)
      ORDER BY b.type FOR UPDATE),
    -- A start due within NAP_MS is waited for here, holding the bucket, so a claim sent a little
    -- early (the node wakes that much ahead) starts it on time instead of a round trip late.
    waits AS (
      SELECT k.tat - l.tolerance - ${ms("clock_timestamp()")} AS wait FROM locked k JOIN lim l USING (type)),
    nap AS (
      SELECT pg_sleep(coalesce((SELECT min(wait) FROM waits WHERE wait > 0 AND wait <= ${NAP_MS}), 0) / 1000.0) AS napped),
    plan AS (
      SELECT k.type, greatest(k.tat, c.now) AS base, l.step, l.tolerance, c.now,
             greatest(0, least(w.n, floor((c.now + l.tolerance - greatest(k.tat, c.now)) / l.step + 1e-9) + 1))::int AS k
      FROM locked k JOIN lim l USING (type) JOIN want w USING (type), (SELECT ${ms("clock_timestamp()")} AS now FROM nap) c),
    bumped AS (
      UPDATE jobqueue_buckets b SET tat = p.base + p.k * p.step
      FROM plan p WHERE b.type = p.type AND b.key = '' AND p.k > 0
      RETURNING b.type),
    allowed AS (SELECT c.id FROM cand c JOIN plan p USING (type) WHERE c.rn <= p.k),
    rate_held AS (
      SELECT c.id, c.type, ceil(greatest(0, p.base + p.k * p.step - p.tolerance - p.now - ${NAP_LEAD_MS}))::float8 AS retry
      FROM cand c JOIN plan p USING (type) WHERE c.rn > p.k
      UNION ALL
      SELECT c.id, c.type, NULL FROM cand c WHERE c.type NOT IN (SELECT type FROM plan)),`;
  const sql = claimStatement({
    ctes, limited: "$6::text[]", allowed: "ARRAY(SELECT id FROM allowed)",
    extraRows: "UNION ALL SELECT 'rate', id, type, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, retry, NULL, NULL FROM rate_held",
  });
  const rows = await q.query<ClaimRow>(sql, [
    claimIds, now, now + leaseMs, owner, EXPIRED_ERROR, rated.map(([t]) => t),
    rated.map(([, l]) => l.rate!.perMs / l.rate!.limit), rated.map(([, l]) => (l.rate!.burst - 1) * (l.rate!.perMs / l.rate!.limit)),
  ]);
  return toResult(rows);
}
