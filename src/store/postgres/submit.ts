// submit.ts: the PostgreSQL store's inserts (the dispatcher's submits, with idempotency keys, and jobs
// born leased straight into inflight), each one statement or one transaction. No claims or settles here.
import type { JobMoves, StoreTestHooks } from "../store.ts";
import type { InsertResult, NewJob } from "../rows.ts";
import type { Connection, Methods, Queries } from "./connection.ts";
import { at } from "./sql.ts";

/**
 * One statement that inserts jobs into pending_jobs, except those with a lease, which go straight
 * to inflight_jobs as their first attempt (unless their type is paused: those go to pending and
 * come back `held`). `rowIds` gives the ids (keyed inserts draw them first); null draws them from
 * the sequence in input order. Returns the ids in input order.
 */
async function insertSplit(q: Queries, rows: NewJob[], now: number, rowIds: number[] | null): Promise<{ id: number; held: boolean }[]> {
  const got = await q.query<{ id: number; held: boolean }>(`
    WITH paused AS MATERIALIZED (SELECT type FROM jobqueue_paused),
    t AS MATERIALIZED (
      SELECT coalesce(t.given_id, nextval('jobs_id_seq')) AS id, t.*,
             t.owner IS NOT NULL AND t.type = ANY(ARRAY(SELECT type FROM paused)) AS held
      FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int2[], $5::int4[], $6::int4[], $7::float8[], $8::text[], $9::float8[],
                  $11::text[], $12::float8[], $13::text[])
           WITH ORDINALITY AS t(given_id, type, payload, priority, max_attempts, timeout_ms, run_at, owner, lease_until,
                                key, start_by, trace, ord)
      ORDER BY t.ord),
    queued AS (
      INSERT INTO pending_jobs (id, type, payload, priority, max_attempts, timeout_ms, run_at, created_at, key, start_by, trace)
      SELECT id, type, payload::json, priority, max_attempts, timeout_ms, ${at("run_at")}, ${at("$10")},
             key, ${at("start_by")}, trace
      FROM t WHERE owner IS NULL OR held),
    started AS (
      INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
                                 picked_at, lease_until, owner, key, start_by, trace)
      SELECT id, type, payload::json, priority, 1, max_attempts, timeout_ms, ${at("run_at")},
             ${at("$10")}, ${at("$10")}, ${at("lease_until")}, owner, key, ${at("start_by")}, trace
      FROM t WHERE owner IS NOT NULL AND NOT held)
    SELECT id, held FROM t ORDER BY ord`,
    [rowIds ?? rows.map(() => null), rows.map((j) => j.type), rows.map((j) => j.payload), rows.map((j) => j.priority),
     rows.map((j) => j.maxAttempts), rows.map((j) => j.timeoutMs), rows.map((j) => j.runAt),
     rows.map((j) => j.lease?.owner ?? null), rows.map((j) => j.lease?.until ?? null), now,
     rows.map((j) => j.key ?? null), rows.map((j) => j.startBy ?? null), rows.map((j) => j.trace ?? null)]);
  return got;
}

export function createSubmit(db: Connection): Methods<Pick<JobMoves, "add"> & Pick<StoreTestHooks, "insert">> {
  const insert = db.op("insert", async (jobs: NewJob[], now: number): Promise<number[]> => {
    if (jobs.length === 0) return [];
    if (jobs.some((j) => j.idempotencyKey !== undefined)) return (await add(jobs, now)).map((r) => r.id);
    if (jobs.some((j) => j.lease !== undefined)) return (await insertSplit(db, jobs, now, null)).map((r) => r.id).sort((a, b) => a - b);
    const rows = await db.query<{ id: number }>(`
      INSERT INTO pending_jobs (type, payload, priority, max_attempts, timeout_ms, run_at, created_at, key, start_by, trace)
      SELECT t.type, t.payload::json, t.priority, t.max_attempts, t.timeout_ms,
             ${at("t.run_at")}, ${at("$1")}, t.key, ${at("t.start_by")}, t.trace
      FROM unnest($2::text[], $3::text[], $4::int2[], $5::int4[], $6::int4[], $7::float8[], $8::text[], $9::float8[], $10::text[])
           WITH ORDINALITY AS t(type, payload, priority, max_attempts, timeout_ms, run_at, key, start_by, trace, ord)
      ORDER BY t.ord
      RETURNING id`,
      [now, jobs.map((j) => j.type), jobs.map((j) => j.payload), jobs.map((j) => j.priority), jobs.map((j) => j.maxAttempts),
       jobs.map((j) => j.timeoutMs), jobs.map((j) => j.runAt), jobs.map((j) => j.key ?? null), jobs.map((j) => j.startBy ?? null),
       jobs.map((j) => j.trace ?? null)]);
    // INSERT … SELECT … ORDER BY assigns nextval in that order, and RETURNING follows it.
    return rows.map((r) => r.id).sort((a, b) => a - b);
  });

  const add = db.op("add", async (jobs: NewJob[], now: number): Promise<InsertResult[]> => {
    if (jobs.length === 0) return [];
    if (jobs.every((j) => j.idempotencyKey === undefined)) {
      if (jobs.some((j) => j.lease !== undefined)) {
        return (await insertSplit(db, jobs, now, null)).map((r): InsertResult => ({ id: r.id, duplicate: false, ...(r.held && { held: true }) }));
      }
      return (await insert(jobs, now)).map((id): InsertResult => ({ id, duplicate: false }));
    }
    return await db.begin(async (tx) => {
      // A key's first job in this call is its candidate; later ones map to whoever holds it.
      const firstOf = new Map<string, number>();
      const fresh: number[] = [];
      jobs.forEach((j, i) => {
        if (j.idempotencyKey === undefined) fresh.push(i);
        else if (!firstOf.has(j.idempotencyKey)) {
          firstOf.set(j.idempotencyKey, i);
          fresh.push(i);
        }
      });
      // Ids for every candidate up front, increasing in input order; a losing key's id is a gap.
      const drawn = (await tx.query<{ id: number }>("SELECT nextval('jobs_id_seq') AS id FROM generate_series(1, $1)", [fresh.length]))
        .map((r) => r.id).sort((a, b) => a - b);
      const idOf = new Map<number, number>(fresh.map((i, n) => [i, drawn[n]!]));
      // Claim the keys in key order (two submits with the same keys then lock them in one order).
      const holder = new Map<string, { id: number; duplicate: boolean }>();
      let open = [...firstOf.keys()].sort();
      for (let round = 0; open.length > 0; round++) {
        if (round === 3) throw new Error("idempotency keys kept changing hands while inserting");
        const won = await tx.query<{ key: string }>(`
          INSERT INTO idempotency_keys (key, job_id, created_at)
          SELECT t.key, t.job_id, ${at("$1")}
          FROM unnest($2::text[], $3::bigint[]) AS t(key, job_id)
          ORDER BY t.key
          ON CONFLICT (key) DO NOTHING
          RETURNING key`, [now, open, open.map((k) => idOf.get(firstOf.get(k)!)!)]);
        for (const { key } of won) holder.set(key, { id: idOf.get(firstOf.get(key)!)!, duplicate: false });
        const lost = open.filter((k) => !holder.has(k));
        if (lost.length === 0) break;
        const held = await tx.query<{ key: string; job_id: number }>(
          "SELECT key, job_id FROM idempotency_keys WHERE key = ANY($1::text[])", [lost]);
        for (const r of held) holder.set(r.key, { id: r.job_id, duplicate: true });
        // A holder that left the system between the two statements released its key: try again.
        open = lost.filter((k) => !holder.has(k));
      }
      const results = jobs.map((j, i): InsertResult => {
        if (j.idempotencyKey === undefined) return { id: idOf.get(i)!, duplicate: false };
        const h = holder.get(j.idempotencyKey)!;
        return firstOf.get(j.idempotencyKey) === i ? h : { id: h.id, duplicate: true };
      });
      const inserting = results.filter((r) => !r.duplicate);
      const rows = jobs.filter((_, i) => !results[i]!.duplicate);
      if (rows.length > 0) {
        const inserted = await insertSplit(tx, rows, now, inserting.map((r) => r.id));
        inserted.forEach((r, n) => {
          if (r.held) inserting[n]!.held = true;
        });
      }
      return results;
    });
  });

  return { add, insert };
}
