// claims.ts: the PostgreSQL store's claims, pending → inflight (by the ids the heap holds, or the most
// urgent due rows in the store) and the read that ranks those rows without claiming them. Settling an
// attempt is in settle.ts; what to claim is the scheduler's decision, not made here.
import type { JobMoves } from "../store.ts";
import type { ClaimResult, TypeCap } from "../rows.ts";
import type { Connection, Methods, Queries } from "./connection.ts";
import { bucketName, needs, planStarts, type Candidate, type FlowLimits } from "../flow-plan.ts";
import { CARRY_COLS, ENTRY_COLS, JOB_COLS, at, ms, toClaimed, toEntry, type EntryRow, type JobRow } from "./sql.ts";
import { agingKeySql } from "../../aging.ts";

/**
 * The tail of every claim, whose CTE `moved` holds the pending rows it took: they enter inflight
 * with this attempt counted, picked at `pickedAtMs` and leased to `owner` until `untilMs` (SQL
 * expressions for epoch ms and the owner), and come back as claimed jobs.
 */
const CLAIM_INTO_INFLIGHT = (pickedAtMs: string, untilMs: string, owner: string) => `
  INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at,
                             created_at, last_error, picked_at, lease_until, owner, ${CARRY_COLS})
  SELECT id, type, payload, priority, attempts + 1, max_attempts, timeout_ms, run_at, created_at, last_error,
         ${at(pickedAtMs)}, ${at(untilMs)}, ${owner}, ${CARRY_COLS}
  FROM moved
  RETURNING ${JOB_COLS}`;

/**
 * The most urgent due pending rows by aging key, with their `urgency` (run_at − priority × aging, in
 * ms): the `limit` oldest of each priority (one probe of pending_jobs_priority_run_at_idx per
 * priority), which hold the `limit` most urgent overall. `claiming` locks them FOR UPDATE SKIP
 * LOCKED, so idle nodes never fight over one backlog, and applies per-type caps (SQL expressions):
 * types in `capTypes` are left out of that probe and get probes of their own, `room` rows of each
 * per priority, so a capped type's backlog cannot crowd the others out (types with no room are
 * passed with room 0 and so contribute nothing).
 */
const URGENT = (now: string, limit: string, agingMs: string, claiming?: { capTypes: string; capRooms: string }) => `
  SELECT due.*, ${agingKeySql(ms("due.run_at"), "due.priority", `${agingMs}::float8`)} AS urgency FROM (
    SELECT c.* FROM generate_series(0, 100) AS p(priority)
    CROSS JOIN LATERAL (
      SELECT id, type, priority, run_at, created_at, key FROM pending_jobs
      WHERE priority = p.priority AND run_at <= ${at(now)}
        ${claiming ? `AND type <> ALL(${claiming.capTypes})` : ""}
      ORDER BY run_at, id LIMIT ${limit}
      ${claiming ? "FOR UPDATE SKIP LOCKED" : ""}) c
    ${claiming ? `UNION ALL
    SELECT c.* FROM generate_series(0, 100) AS p(priority)
    CROSS JOIN unnest(${claiming.capTypes}, ${claiming.capRooms}) AS k(type, room)
    CROSS JOIN LATERAL (
      SELECT id, type, priority, run_at, created_at, key FROM pending_jobs
      WHERE priority = p.priority AND type = k.type AND run_at <= ${at(now)}
      ORDER BY run_at, id LIMIT least(k.room, ${limit})
      FOR UPDATE SKIP LOCKED) c` : ""}) due`;

/**
 * Move the given ids that are still pending and due into inflight. The due check compares epoch
 * ms, an expression no index covers, so the only index path is the primary key. Written as
 * run_at <= …, a generic plan made while pending_jobs was small (its row count stale while submits
 * pour in) took pending_jobs_run_at_idx instead and filtered every due row
 * (tests/postgres-plans.test.ts holds the claim to the key).
 */
async function claimIds_(q: Queries, claimIds: number[], owner: string, now: number, leaseMs: number,
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
async function claimWeighed(tx: Queries, claimIds: number[], owner: string, now: number, leaseMs: number, limits: FlowLimits): Promise<ClaimResult> {
  const limited = [...limits.keys()];
  const cands = await tx.query<Candidate & { at: number }>(`
    SELECT id, type, key, ${ms("clock_timestamp()")} AS at FROM pending_jobs
    WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8 AND type = ANY($3::text[])
    FOR UPDATE SKIP LOCKED`, [claimIds, now, limited]);
  if (cands.length === 0) return { jobs: await claimIds_(tx, claimIds, owner, now, leaseMs, { limited, allowed: [] }), held: [] };
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
  return { jobs: await claimIds_(tx, claimIds, owner, now, leaseMs, { limited, allowed: plan.allowed }), held: plan.held };
}

export function createClaims(db: Connection): Methods<Pick<JobMoves, "claim" | "claimNext" | "peekUrgent">> {
  return {
    claim: db.op("claim", async (claimIds: number[], owner: string, now: number, leaseMs: number, limits?: FlowLimits) => {
      if (claimIds.length === 0) return { jobs: [], held: [] };
      if (limits !== undefined && limits.size > 0) return await db.begin((tx) => claimWeighed(tx, claimIds, owner, now, leaseMs, limits));
      return { jobs: await claimIds_(db, claimIds, owner, now, leaseMs), held: [] };
    }),

    claimNext: db.op("claimNext", async (limit: number, owner: string, now: number, leaseMs: number, agingMs: number, caps: TypeCap[] = []) => {
      if (limit <= 0) return [];
      // The most urgent due rows nobody else is claiming; types at their limit in the caller are
      // left out, and of each capped type at most its room is taken, most urgent first.
      const rows = await db.query<JobRow>(`
        WITH cand AS (${URGENT("$1", "$2", "$3", { capTypes: "$6::text[]", capRooms: "$7::int4[]" })}),
        caps AS (SELECT * FROM unnest($6::text[], $7::int4[]) AS c(type, room)),
        ranked AS (
          SELECT cand.id, cand.urgency, c.room, row_number() OVER (PARTITION BY cand.type ORDER BY cand.urgency, cand.id) AS rn
          FROM cand LEFT JOIN caps c ON c.type = cand.type),
        chosen AS (SELECT id FROM ranked WHERE room IS NULL OR rn <= room ORDER BY urgency, id LIMIT $2),
        moved AS (DELETE FROM pending_jobs WHERE id IN (SELECT id FROM chosen) RETURNING *)
        ${CLAIM_INTO_INFLIGHT("$1", "$4", "$5")}`,
        [now, limit, agingMs, now + leaseMs, owner, caps.map((c) => c.type), caps.map((c) => Math.max(0, c.room))]);
      return rows.map(toClaimed);
    }),

    peekUrgent: db.op("peekUrgent", async (now: number, agingMs: number, limit: number) => {
      if (limit <= 0) return [];
      const rows = await db.query<EntryRow>(`
        SELECT ${ENTRY_COLS}
        FROM (${URGENT("$1", "$2", "$3")}) u ORDER BY urgency, id LIMIT $2`, [now, limit, agingMs]);
      return rows.map(toEntry);
    }),
  };
}
