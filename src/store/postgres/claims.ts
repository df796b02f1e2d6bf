// claims.ts: the PostgreSQL store's claims, pending → inflight (by the ids the heap holds, or the most
// urgent due rows in the store) and the read that ranks those rows without claiming them. Settling an
// attempt is in settle.ts; what to claim is the scheduler's decision, not made here.
import type { JobMoves } from "../store.ts";
import { EXPIRED_ERROR, type ClaimedJob, type HeldJob, type TypeCap } from "../rows.ts";
import type { Connection, Methods } from "./connection.ts";
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

/** A pending row that may start at `now` (epoch ms): its type is not paused and its deadline has not passed. */
const STARTABLE = (now: string) =>
  `type <> ALL(ARRAY(SELECT type FROM jobqueue_paused)) AND (start_by IS NULL OR start_by >= ${at(now)})`;

/** The columns of a claim's answer: what kind of row (started, expired or held), then a job's columns. */
type ClaimRow = JobRow & { kind: "started" | "expired" | "held" };

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
      WHERE priority = p.priority AND run_at <= ${at(now)} AND ${STARTABLE(now)}
        ${claiming ? `AND type <> ALL(${claiming.capTypes})` : ""}
      ORDER BY run_at, id LIMIT ${limit}
      ${claiming ? "FOR UPDATE SKIP LOCKED" : ""}) c
    ${claiming ? `UNION ALL
    SELECT c.* FROM generate_series(0, 100) AS p(priority)
    CROSS JOIN unnest(${claiming.capTypes}, ${claiming.capRooms}) AS k(type, room)
    CROSS JOIN LATERAL (
      SELECT id, type, priority, run_at, created_at, key FROM pending_jobs
      WHERE priority = p.priority AND type = k.type AND run_at <= ${at(now)} AND ${STARTABLE(now)}
      ORDER BY run_at, id LIMIT least(k.room, ${limit})
      FOR UPDATE SKIP LOCKED) c` : ""}) due`;

export function createClaims(db: Connection): Methods<Pick<JobMoves, "claim" | "claimNext" | "peekUrgent">> {
  return {
    claim: db.op("claim", async (claimIds: number[], owner: string, now: number, leaseMs: number) => {
      if (claimIds.length === 0) return { jobs: [], held: [], expired: [] };
      // The due check compares epoch ms, an expression no index covers, so the only index path
      // is the primary key. Written as run_at <= …, a generic plan made while pending_jobs was
      // small (its row count stale while submits pour in) took pending_jobs_run_at_idx instead
      // and filtered every due row (tests/postgres-plans.test.ts holds the claim to the key).
      // One statement: due rows of types not paused leave pending; those past their deadline go
      // to dead as expired, the rest to inflight; due rows of paused types stay and come back as
      // held. With nothing paused (the usual case) the paused list is one look at an empty table,
      // and the held rows' probe is skipped by a one-time filter. The expired and held rows are
      // padded with NULLs to JOB_COLS' columns (id, type, …, key at the 11th): keep them in step.
      const rows = await db.query<ClaimRow>(`
        WITH paused AS MATERIALIZED (SELECT type FROM jobqueue_paused),
        moved AS (
          DELETE FROM pending_jobs WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8
            AND (type <> ALL(ARRAY(SELECT type FROM paused)) OR ${ms("start_by")} < $2::float8)
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
          RETURNING ${JOB_COLS})
        SELECT 'started' AS kind, * FROM started
        UNION ALL
        SELECT 'expired', id, type, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM expired
        UNION ALL
        SELECT 'held', id, type, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, key, NULL, NULL FROM pending_jobs
        WHERE EXISTS (SELECT 1 FROM paused)
          AND id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8 AND type = ANY(ARRAY(SELECT type FROM paused))
          AND (start_by IS NULL OR ${ms("start_by")} >= $2::float8)`, [claimIds, now, now + leaseMs, owner, EXPIRED_ERROR]);
      const jobs: ClaimedJob[] = [];
      const held: HeldJob[] = [];
      const expired: number[] = [];
      for (const r of rows) {
        if (r.kind === "started") jobs.push(toClaimed(r));
        else if (r.kind === "expired") expired.push(r.id);
        else held.push({ id: r.id, type: r.type, key: r.key, reason: "paused", retryInMs: null });
      }
      return { jobs, held, expired };
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
