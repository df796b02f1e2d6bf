// claim-moves.ts: the PostgreSQL statements that move claimed rows pending → inflight: by id, and by
// id with flow control's rate and per-key limits weighed in the same transaction (flow-plan.ts).
// Which ids to claim is the caller's decision; claims.ts offers them as the store's verbs.
import type { ClaimResult } from "../rows.ts";
import type { Queries } from "./connection.ts";
import { bucketName, needs, planStarts, type Candidate, type FlowLimits } from "../flow-plan.ts";
import { CARRY_COLS, JOB_COLS, at, ms, toClaimed, type JobRow } from "./sql.ts";

/**
 * The tail of every claim, whose CTE `moved` holds the pending rows it took: they enter inflight
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

/**
 * Move the given ids that are still pending and due into inflight. The due check compares epoch
 * ms, an expression no index covers, so the only index path is the primary key. Written as
 * run_at <= …, a generic plan made while pending_jobs was small (its row count stale while submits
 * pour in) took pending_jobs_run_at_idx instead and filtered every due row
 * (tests/postgres-plans.test.ts holds the claim to the key).
 */
export async function claimByIds(q: Queries, claimIds: number[], owner: string, now: number, leaseMs: number,
  weighed?: { limited: string[]; allowed: number[] }) {
  // After weighing, a limited type's row moves only when it was allowed: the rest are held, or locked
  // by another claim (never waited for: that claim may be queued on a bucket this one holds).
  const rows = await q.query<JobRow>(`
    WITH moved AS (
      DELETE FROM pending_jobs WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8
        ${weighed ? "AND (type <> ALL($5::text[]) OR id = ANY($6::bigint[]))" : ""}
      RETURNING *)
    ${CLAIM_INTO_INFLIGHT("$2", "$3", "$4")}`,
    weighed ? [claimIds, now, now + leaseMs, owner, weighed.limited, weighed.allowed] : [claimIds, now, now + leaseMs, owner]);
  return rows.map(toClaimed);
}

/**
 * A claim that weighs rate and per-key limits, in one transaction: lock the candidates of limited
 * types (skipping rows another claim holds), then their buckets in one sorted order (so claims on
 * several nodes queue on a bucket instead of deadlocking), count each limited key's running jobs
 * once its bucket is held (a claim that committed before sees its rows), decide on the database's
 * clock (one clock for every node), write the buckets back and move what may start.
 */
export async function claimWeighed(tx: Queries, claimIds: number[], owner: string, now: number, leaseMs: number, limits: FlowLimits): Promise<ClaimResult> {
  const limited = [...limits.keys()];
  const cands = await tx.query<Candidate & { at: number }>(`
    SELECT id, type, key, ${ms("clock_timestamp()")} AS at FROM pending_jobs
    WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8 AND type = ANY($3::text[])
    FOR UPDATE SKIP LOCKED`, [claimIds, now, limited]);
  if (cands.length === 0) return { jobs: await claimByIds(tx, claimIds, owner, now, leaseMs, { limited, allowed: [] }), held: [] };
  // The claim's order is the heap's: most urgent first.
  const rank = new Map(claimIds.map((id, i) => [id, i]));
  cands.sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
  const dbNow = cands[0]!.at;
  const { buckets, keys } = needs(cands, limits);
  const tats = new Map<string, number>();
  if (buckets.length > 0) {
    // ON CONFLICT DO UPDATE locks an existing row and returns it; rows go in the order given.
    const rows = await tx.query<{ type: string; key: string; tat: number }>(`
      INSERT INTO jobqueue_buckets (type, key, tat)
      SELECT t.type, t.key, '-Infinity'::float8 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(type, key, ord) ORDER BY t.ord
      ON CONFLICT (type, key) DO UPDATE SET tat = jobqueue_buckets.tat
      RETURNING type, key, tat`, [buckets.map((b) => b[0]), buckets.map((b) => b[1])]);
    for (const r of rows) tats.set(bucketName(r.type, r.key), r.tat);
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
  return { jobs: await claimByIds(tx, claimIds, owner, now, leaseMs, { limited, allowed: plan.allowed }), held: plan.held };
}


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
 * the candidates of rated types are locked (rows another claim holds are skipped), then each
 * type's bucket row (FOR UPDATE, in type order: claims queue on a bucket, never deadlock; a row
 * changed meanwhile is read again as committed), and GCRA (flow-plan.ts) lets the first k of each
 * type start, k = min(wanted, ⌊(now + τ − max(tat, now)) / T⌋ + 1) on the database's clock. The
 * buckets move on by k · T, the allowed rows and every unrated id move to inflight, and the held
 * come back on the first row (json) with the wait until their type's next start.
 */
export async function claimRated(q: Queries, claimIds: number[], owner: string, now: number, leaseMs: number, limits: FlowLimits): Promise<ClaimResult> {
  const rated = [...limits.entries()].filter(([, l]) => l.rate !== undefined);
  const rows = await q.query<JobRow & { held: { id: number; type: string; retry: number | null }[] | null }>(`
    WITH lim AS (
      SELECT * FROM unnest($5::text[], $6::float8[], $7::float8[]) AS l(type, step, tolerance)),
    cand AS (
      SELECT p.id, p.type, row_number() OVER (PARTITION BY p.type ORDER BY array_position($1::bigint[], p.id)) AS rn
      FROM (SELECT id, type FROM pending_jobs
            WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8 AND type = ANY($5::text[])
            FOR UPDATE SKIP LOCKED) p),
    want AS (SELECT type, count(*) AS n FROM cand GROUP BY type),
    locked AS (
      SELECT b.type, b.tat FROM jobqueue_buckets b
      WHERE b.key = '' AND b.type IN (SELECT type FROM want)
      ORDER BY b.type FOR UPDATE),
    plan AS (
      SELECT k.type, greatest(k.tat, c.now) AS base, l.step, l.tolerance, c.now,
             greatest(0, least(w.n, floor((c.now + l.tolerance - greatest(k.tat, c.now)) / l.step + 1e-9) + 1))::int AS k
      FROM locked k JOIN lim l USING (type) JOIN want w USING (type), (SELECT ${ms("clock_timestamp()")} AS now) c),
    bumped AS (
      UPDATE jobqueue_buckets b SET tat = p.base + p.k * p.step
      FROM plan p WHERE b.type = p.type AND b.key = '' AND p.k > 0
      RETURNING b.type),
    allowed AS (SELECT c.id FROM cand c JOIN plan p USING (type) WHERE c.rn <= p.k),
    held AS (
      SELECT c.id, c.type, ceil(greatest(0, p.base + p.k * p.step - p.tolerance - p.now)) AS retry
      FROM cand c JOIN plan p USING (type) WHERE c.rn > p.k
      UNION ALL
      -- A rated type whose bucket row is missing starts nothing until the row is made again.
      SELECT c.id, c.type, NULL FROM cand c WHERE c.type NOT IN (SELECT type FROM plan)),
    moved AS (
      DELETE FROM pending_jobs
      WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8
        AND (type <> ALL($5::text[]) OR id IN (SELECT id FROM allowed))
      RETURNING *),
    ins AS (${CLAIM_INTO_INFLIGHT("$2", "$3", "$4")})
    SELECT i.*, CASE WHEN row_number() OVER () = 1 THEN h.held END AS held
    FROM (SELECT json_agg(json_build_object('id', id, 'type', type, 'retry', retry)) AS held FROM held) h
    LEFT JOIN ins i ON true`,
    [claimIds, now, now + leaseMs, owner, rated.map(([t]) => t),
     rated.map(([, l]) => l.rate!.perMs / l.rate!.limit), rated.map(([, l]) => (l.rate!.burst - 1) * (l.rate!.perMs / l.rate!.limit))]);
  const held = (rows[0]?.held ?? []).map((h) =>
    ({ id: Number(h.id), type: h.type, key: null, reason: "rate_limit" as const, retryInMs: h.retry === null ? null : Number(h.retry) }));
  return { jobs: rows.filter((r) => r.id !== null).map(toClaimed), held };
}
