// claims.ts: the PostgreSQL store's claims, pending → inflight (by the ids the heap holds, or the most
// urgent due rows in the store) and the read that ranks those rows without claiming them. Settling an
// attempt is in settle.ts; what to claim is the scheduler's decision, not made here.
import type { JobMoves } from "../store.ts";
import type { TypeCap } from "../rows.ts";
import type { Connection, Methods } from "./connection.ts";
import type { FlowLimits } from "../flow-plan.ts";
import { CLAIM_INTO_INFLIGHT, STARTABLE, claimByIds, claimRated, claimWeighed, ensureRateBuckets, ratesOnly } from "./claim-moves.ts";
import { ENTRY_COLS, at, ms, toClaimed, toEntry, type EntryRow, type JobRow } from "./sql.ts";
import { agingKeySql } from "../../aging.ts";

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
      SELECT id, type, priority, run_at, key FROM pending_jobs
      WHERE priority = p.priority AND run_at <= ${at(now)} AND ${STARTABLE(now)}
        ${claiming ? `AND type <> ALL(${claiming.capTypes})` : ""}
      ORDER BY run_at, id LIMIT ${limit}
      ${claiming ? "FOR UPDATE SKIP LOCKED" : ""}) c
    ${claiming ? `UNION ALL
    SELECT c.* FROM generate_series(0, 100) AS p(priority)
    CROSS JOIN unnest(${claiming.capTypes}, ${claiming.capRooms}) AS k(type, room)
    CROSS JOIN LATERAL (
      SELECT id, type, priority, run_at, key FROM pending_jobs
      WHERE priority = p.priority AND type = k.type AND run_at <= ${at(now)} AND ${STARTABLE(now)}
      ORDER BY run_at, id LIMIT least(k.room, ${limit})
      FOR UPDATE SKIP LOCKED) c` : ""}) due`;

export function createClaims(db: Connection): Methods<Pick<JobMoves, "claim" | "claimNext" | "peekUrgent">> {
  /** Limits whose rate buckets exist (the one-statement rated claim locks them, so they must). */
  const bucketsMade = new WeakSet<FlowLimits>();
  return {
    claim: db.op("claim", async (claimIds: number[], owner: string, now: number, leaseMs: number, limits?: FlowLimits) => {
      if (claimIds.length === 0) return { jobs: [], held: [], expired: [] };
      if (limits !== undefined && limits.size > 0) {
        if (!ratesOnly(limits)) return await db.begin((tx) => claimWeighed(tx, claimIds, owner, now, leaseMs, limits));
        if (!bucketsMade.has(limits)) {
          await ensureRateBuckets(db, limits);
          bucketsMade.add(limits);
        }
        const result = await claimRated(db, claimIds, owner, now, leaseMs, limits);
        // A rate hold without a wait lacked its bucket row: make the rows again before the next claim.
        if (result.held.some((h) => h.reason === "rate_limit" && h.retryInMs === null)) bucketsMade.delete(limits);
        return result;
      }
      return await claimByIds(db, claimIds, owner, now, leaseMs);
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
