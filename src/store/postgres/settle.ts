// settle.ts: the PostgreSQL store's moves out of inflight for attempts this process runs (done,
// retried, buried, cancelled, handed back at shutdown) and their lease upkeep. Every one is fenced by
// (id, attempts) and answers per claim whether it took effect; none is retried here.
import type { JobMoves } from "../store.ts";
import { attemptColumns, type AttemptOutcome, type BuryMove, type ClaimRef, type CompleteMove, type RetryMove, type ThrottleMove } from "../rows.ts";
import type { Connection, Methods } from "./connection.ts";
import { CARRY_COLS, ENTRY_COLS, RECORD_ATTEMPTS, THROTTLED_CARRY, at, toEntry, type EntryRow } from "./sql.ts";

/** The ids and the attempts of a batch of claims: the two arrays a fenced statement unnests. */
const ids = (refs: ReadonlyArray<{ id: number }>) => refs.map((r) => r.id);
const attempts = (refs: ReadonlyArray<ClaimRef>) => refs.map((r) => r.attempt);

/**
 * result[i] = whether refs[i]'s claim (id and attempt) came back from a fenced statement. By the pair,
 * not the id: a batch may name a stale attempt beside the running one of the same job.
 */
function tookEffect(refs: ReadonlyArray<ClaimRef>, rows: ReadonlyArray<{ id: number; attempts: number }>): boolean[] {
  // Each row answers at least one ref and each ref at most one row (a row is one id): as many rows
  // as refs means every ref took effect (the usual case, without a key per ref).
  if (rows.length === refs.length) return refs.map(() => true);
  const done = new Set(rows.map((r) => `${r.id}:${r.attempts}`));
  return refs.map((r) => done.has(`${r.id}:${r.attempt}`));
}

type Fenced = { id: number; attempts: number };

export function createSettle(
  db: Connection,
): Methods<Pick<JobMoves, "complete" | "retry" | "throttle" | "bury" | "completeCancelled" | "extendLeases" | "release" | "releaseStrays">> {
  const complete = db.op("complete", async (refs: CompleteMove[], keep?: { finishedAt: number; expiresAt: number }) => {
    if (refs.length === 0) return [];
    if (keep !== undefined) {
      // The job leaves a small record behind and keeps its idempotency key until it is pruned.
      const kept = await db.query<Fenced>(`
        WITH done AS (
          DELETE FROM inflight_jobs j
          USING unnest($1::bigint[], $2::int4[], $3::text[], $6::int4[]) AS f(id, attempts, result, run_ms)
          WHERE j.id = f.id AND j.attempts = f.attempts
          RETURNING j.*, f.result AS result, f.run_ms AS run_ms),
        kept AS (
          INSERT INTO completed_jobs (id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result, run_ms, node)
          SELECT id, type, priority, attempts, max_attempts, run_at, created_at, ${at("$4")}, ${at("$5")}, result, run_ms, owner
          FROM done)
        SELECT id, attempts FROM done`,
        [ids(refs), attempts(refs), refs.map((r) => r.result ?? null), keep.finishedAt, keep.expiresAt,
          refs.map((r) => (r.runMs === undefined ? null : Math.round(r.runMs)))]);
      return tookEffect(refs, kept);
    }
    const rows = await db.query<Fenced>(`
      WITH done AS (
        DELETE FROM inflight_jobs j USING unnest($1::bigint[], $2::int4[]) AS f(id, attempts)
        WHERE j.id = f.id AND j.attempts = f.attempts
        RETURNING j.id, j.attempts),
      released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id),
      forgotten AS (DELETE FROM job_attempts a USING done WHERE a.job_id = done.id)
      SELECT id, attempts FROM done`, [ids(refs), attempts(refs)]);
    return tookEffect(refs, rows);
  });

  /**
   * Fenced moves of running attempts back to pending, due at each move's run time with its error:
   * `attemptsSql` is the attempts the row keeps, `carry` its flow-control columns, `fencedAs` the
   * attempts each returned row is matched to its move by.
   */
  async function backToPending(moves: RetryMove[], attemptsSql: string, carry: string, fencedAs: string, outcome: AttemptOutcome): Promise<boolean[]> {
    if (moves.length === 0) return [];
    const rec = attemptColumns(moves.map((m) => (m.end === undefined ? { ...m, end: { outcome, endedAt: Date.now() } } : m)), Date.now());
    const rows = await db.query<Fenced>(`
      WITH f AS (
        SELECT * FROM unnest($1::bigint[], $2::int4[], $3::float8[], $4::text[], $5::text[], $6::float8[], $7::int4[], $8::int4[], $9::text[])
          AS f(id, attempts, run_at, error, outcome, ended_at, status, exit_code, rec_error)),
      moved AS (
        DELETE FROM inflight_jobs j USING f WHERE j.id = f.id AND j.attempts = f.attempts
        RETURNING j.*, f.run_at AS next_run_at, f.error AS error, f.outcome, f.ended_at, f.status, f.exit_code, f.rec_error)
      ${RECORD_ATTEMPTS("outcome", "ended_at", "status", "exit_code", "rec_error")}
      INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS})
      SELECT id, type, payload, priority, ${attemptsSql}, max_attempts, timeout_ms, ${at("next_run_at")},
             created_at, error, ${carry}
      FROM moved
      RETURNING id, ${fencedAs}`,
      [ids(moves), attempts(moves), moves.map((m) => m.runAt), moves.map((m) => m.error), rec.outcome, rec.endedAt, rec.status, rec.exitCode, rec.error]);
    return tookEffect(moves, rows);
  }

  return {
    complete,

    retry: db.op("retry", async (moves: RetryMove[]) => await backToPending(moves, "attempts", CARRY_COLS, "attempts", "failed")),

    // Like retry, but the attempt just made does not count and the throttle count goes up.
    throttle: db.op("throttle", async (moves: ThrottleMove[]) =>
      await backToPending(moves, "attempts - 1", THROTTLED_CARRY, "attempts + 1 AS attempts", "throttled")),

    bury: db.op("bury", async (moves: BuryMove[], now: number) => {
      if (moves.length === 0) return [];
      const rec = attemptColumns(moves, now);
      const rows = await db.query<Fenced>(`
        WITH f AS (
          SELECT * FROM unnest($1::bigint[], $2::int4[], $3::text[], $5::text[], $6::float8[], $7::int4[], $8::int4[], $9::text[])
            AS f(id, attempts, error, outcome, ended_at, status, exit_code, rec_error)),
        moved AS (
          DELETE FROM inflight_jobs j USING f WHERE j.id = f.id AND j.attempts = f.attempts
          RETURNING j.*, f.error AS error, f.outcome, f.ended_at, f.status, f.exit_code, f.rec_error)
        ${RECORD_ATTEMPTS("outcome", "ended_at", "status", "exit_code", "rec_error")}
        INSERT INTO dead_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, failed_at, ${CARRY_COLS})
        SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, error,
               ${at("$4")}, ${CARRY_COLS}
        FROM moved
        RETURNING id, attempts`,
        [ids(moves), attempts(moves), moves.map((m) => m.error), now, rec.outcome, rec.endedAt, rec.status, rec.exitCode, rec.error]);
      return tookEffect(moves, rows);
    }),

    // A cancelled attempt leaves no record: the same fenced delete as a plain completion.
    completeCancelled: db.op("completeCancelled", async (refs: ClaimRef[]) => complete(refs)),

    extendLeases: db.op("extendLeases", async (refs: ClaimRef[], owner: string, leaseUntil: number) => {
      if (refs.length === 0) return [];
      const rows = await db.query<Fenced>(`
        UPDATE inflight_jobs j SET lease_until = ${at("$1")}
        FROM unnest($2::bigint[], $3::int4[]) AS f(id, attempts)
        WHERE j.id = f.id AND j.attempts = f.attempts AND j.owner = $4
        RETURNING j.id, j.attempts`, [leaseUntil, ids(refs), attempts(refs), owner]);
      return tookEffect(refs, rows);
    }),

    release: db.op("release", async (refs: ClaimRef[], owner: string, now: number, outcome: AttemptOutcome | null = "shutdown") => {
      if (refs.length === 0) return [];
      const rows = await db.query<EntryRow>(`
        WITH moved AS (
          DELETE FROM inflight_jobs j USING unnest($1::bigint[], $2::int4[]) AS f(id, attempts)
          WHERE j.id = f.id AND j.attempts = f.attempts AND j.owner = $3
          RETURNING j.*)
        ${outcome === null ? "" : RECORD_ATTEMPTS("$5::text", "$4", "NULL::int4", "NULL::int4", "NULL::text")}
        INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS})
        SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, run_at,
               created_at, last_error, ${CARRY_COLS}
        FROM moved
        RETURNING ${ENTRY_COLS}`, outcome === null ? [ids(refs), attempts(refs), owner] : [ids(refs), attempts(refs), owner, now, outcome]);
      return rows.map(toEntry);
    }),

    releaseStrays: db.op("releaseStrays", async (owner: string, keep: number[], _now: number) => {
      const rows = await db.query<EntryRow>(`
        WITH moved AS (DELETE FROM inflight_jobs WHERE owner = $1 AND id <> ALL($2::bigint[]) RETURNING *)
        INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS})
        SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, run_at, created_at, last_error, ${CARRY_COLS}
        FROM moved
        RETURNING ${ENTRY_COLS}`, [owner, keep]);
      return rows.map(toEntry);
    }),
  };
}
