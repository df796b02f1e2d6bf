// postgres.ts: the PostgreSQL Store. Every state move is one statement or one sql.begin, every
// move out of inflight is fenced by (id, attempts). No scheduling decisions here.
import postgres from "postgres";
import { NodeIdInUseError, StoreOutcomeUnknownError, StoreRejectedError, StoreUnavailableError, errorMessage } from "../errors.ts";
import { redactUrl } from "../logger.ts";
import { APPLIED_VERSIONS, MIGRATIONS_TABLE, RECORD_MIGRATION, toApply } from "./migrate.ts";
import type { Store, StoreInfo, StoreTestHooks } from "./store.ts";
import type { BuryMove, ClaimRef, ClaimedJob, CompleteMove, DeadQuery, InsertResult, JobState, JobView, NewJob, PendingEntry, RetryMove, StoreCounts, StoreStats, StatsRow, TypeCap } from "./rows.ts";
import { statsFromRows } from "./rows.ts";

export interface PostgresStoreOptions {
  url: string;
  /** Pool size. */
  max?: number;
  /** Seconds to wait for a connection before failing (kept short: see DESIGN pitfalls). */
  connectTimeoutS?: number;
  onNotice?: (notice: unknown) => void;
  /** This process's own clock (epoch ms); store.clock corrects it by its offset from the server's. */
  localClock?: () => number;
}

type Sql = postgres.Sql<{ bigint: number }>;

/** Statements on the pool, a transaction or a connection of its own. */
interface Queries {
  /** One statement with $n parameters, sent prepared (PREPARED). */
  query<R>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/** A transaction's statements, which may also run a schema script. */
interface Transaction extends Queries {
  /** SQL text that may hold several statements and takes no parameters (migrate.ts): the simple protocol. */
  script(text: string): Promise<unknown>;
}

/**
 * Every statement of this store is `unsafe` text with $n parameters, named and prepared on each
 * connection. `simple: false` keeps one without parameters prepared too (postgres.js would send it
 * over the simple protocol, unprepared).
 */
const PREPARED = { prepare: true, simple: false };

const on = (q: Pick<Sql, "unsafe">): Transaction => ({
  query: <R>(text: string, params: readonly unknown[] = []) => q.unsafe<R[]>(text, params as never[], PREPARED) as unknown as Promise<R[]>,
  script: (text: string) => q.unsafe(text),
});

declare const guarded: unique symbol;
/** A store method made by op() or exempt(): the store's type accepts no other, so none escapes the deadline unsaid. */
type Guarded<F> = F & { readonly [guarded]: true };
type Methods<T> = { [K in keyof T]: Guarded<T[K]> };

/** The channel nodes use to hint that jobs arrived. */
const NOTIFY_CHANNEL = "jobqueue_jobs";
/** At most one hint per this many ms from one process. */
const ANNOUNCE_EVERY_MS = 20;
/** A clock reading whose round trip took longer than this is too vague to keep (ms). */
const MAX_CLOCK_READING_RTT_MS = 50;
/** Longest pause between reconnect attempts (seconds). */
const RECONNECT_CAP_S = 0.5;

// Columns selected for a claimed or viewed job; times as epoch ms (float8), ids as numbers.
/** A timestamptz expression as epoch ms (float8), as every time leaves this store. */
const ms = (col: string) => `(extract(epoch from ${col}) * 1000)::float8`;
/** Epoch ms (a float8 parameter or column) as timestamptz, as every time enters this store. */
const at = (msExpr: string) => `to_timestamp(${msExpr}::float8 / 1000)`;
const JOB_COLS = `id, type, payload::text AS payload, priority, attempts, max_attempts, timeout_ms,
  ${ms("run_at")} AS run_at, ${ms("created_at")} AS created_at, last_error`;
const ENTRY_COLS = `id, type, priority, ${ms("run_at")} AS run_at, ${ms("created_at")} AS created_at`;

/**
 * The tail of a statement whose CTE `moved` holds inflight rows taken back without a verdict
 * (lease expired, process restarted). The interrupted attempt stays counted, so a job that kills
 * its process on every run is dead-lettered after max_attempts runs instead of looping.
 */
const HAND_BACK = (runAt: string, error: string, failedAt: string) => `,
  to_dead AS (
    INSERT INTO dead_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, failed_at)
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
           ${error} || ' on the final attempt', ${failedAt}
    FROM moved WHERE attempts >= max_attempts)
  INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error)
  SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, ${runAt}, created_at, coalesce(last_error, ${error})
  FROM moved WHERE attempts < max_attempts
  RETURNING ${ENTRY_COLS}`;

/**
 * The tail of every claim, whose CTE `moved` holds the pending rows it took: they enter inflight
 * with this attempt counted, picked at `pickedAtMs` and leased to `owner` until `untilMs` (SQL
 * expressions for epoch ms and the owner), and come back as claimed jobs.
 */
const CLAIM_INTO_INFLIGHT = (pickedAtMs: string, untilMs: string, owner: string) => `
  INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at,
                             created_at, last_error, picked_at, lease_until, owner)
  SELECT id, type, payload, priority, attempts + 1, max_attempts, timeout_ms, run_at, created_at, last_error,
         ${at(pickedAtMs)}, ${at(untilMs)}, ${owner}
  FROM moved
  RETURNING ${JOB_COLS}`;

/** The tail of a statement whose CTE `moved` holds dead rows an operator retries: pending, attempts 0, due at `runAt`. */
const FROM_DEAD = (runAt: string) => `
  INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error)
  SELECT id, type, payload, priority, 0, max_attempts, timeout_ms, ${runAt}, created_at, last_error
  FROM moved
  RETURNING ${ENTRY_COLS}`;

/**
 * The most urgent due pending rows by aging key, with their `key` (run_at − priority × aging, in
 * ms): the `limit` oldest of each priority (one probe of pending_jobs_priority_run_at_idx per
 * priority), which hold the `limit` most urgent overall. `claiming` locks them FOR UPDATE SKIP
 * LOCKED, so idle nodes never fight over one backlog, and applies per-type caps (SQL expressions):
 * types in `$capped` are left out of that probe and get probes of their own, `room` rows of each
 * per priority, so a capped type's backlog cannot crowd the others out (types with no room are
 * passed with room 0 and so contribute nothing).
 */
const URGENT = (now: string, limit: string, agingMs: string, claiming?: { capTypes: string; capRooms: string }) => `
  SELECT due.*, ${ms("due.run_at")} - due.priority * ${agingMs}::float8 AS key FROM (
    SELECT c.* FROM generate_series(0, 100) AS p(priority)
    CROSS JOIN LATERAL (
      SELECT id, type, priority, run_at, created_at FROM pending_jobs
      WHERE priority = p.priority AND run_at <= ${at(now)}
        ${claiming ? `AND type <> ALL(${claiming.capTypes})` : ""}
      ORDER BY run_at, id LIMIT ${limit}
      ${claiming ? "FOR UPDATE SKIP LOCKED" : ""}) c
    ${claiming ? `UNION ALL
    SELECT c.* FROM generate_series(0, 100) AS p(priority)
    CROSS JOIN unnest(${claiming.capTypes}, ${claiming.capRooms}) AS k(type, room)
    CROSS JOIN LATERAL (
      SELECT id, type, priority, run_at, created_at FROM pending_jobs
      WHERE priority = p.priority AND type = k.type AND run_at <= ${at(now)}
      ORDER BY run_at, id LIMIT least(k.room, ${limit})
      FOR UPDATE SKIP LOCKED) c` : ""}) due`;

interface JobRow {
  id: number; type: string; payload: string; priority: number; attempts: number; max_attempts: number;
  timeout_ms: number | null; run_at: number; created_at: number; last_error: string | null;
}
interface EntryRow { id: number; type: string; priority: number; run_at: number; created_at: number }

function toClaimed(r: JobRow): ClaimedJob {
  return {
    id: r.id, type: r.type, payload: r.payload, priority: r.priority, attempts: r.attempts,
    maxAttempts: r.max_attempts, timeoutMs: r.timeout_ms, runAt: r.run_at, createdAt: r.created_at,
    lastError: r.last_error,
  };
}
const toEntry = (r: EntryRow): PendingEntry => ({ id: r.id, type: r.type, priority: r.priority, runAt: r.run_at, createdAt: r.created_at });


/** result[i] = whether ids[i] came back from the statement. */
function idsTookEffect(ids: readonly number[], rows: ReadonlyArray<{ id: number }>): boolean[] {
  const done = new Set(rows.map((r) => r.id));
  return ids.map((id) => done.has(id));
}

/**
 * result[i] = whether refs[i]'s claim (id and attempt) came back from a fenced statement. By the pair,
 * not the id: a batch may name a stale attempt beside the running one of the same job.
 */
function tookEffect(refs: ReadonlyArray<ClaimRef>, rows: ReadonlyArray<{ id: number; attempts: number }>): boolean[] {
  const done = new Set(rows.map((r) => `${r.id}:${r.attempts}`));
  return refs.map((r) => done.has(`${r.id}:${r.attempt}`));
}

/**
 * Longest a state move may take before the pool is presumed broken. After PostgreSQL restarts,
 * postgres.js under Bun was seen leaving a query on a dead connection that never settled, which
 * would stall the batch it carries (and every batch behind it) forever.
 */
const STATEMENT_DEADLINE_MS = 15_000;

/** Driver error codes raised before a statement left this process: nothing reached the database. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "CONNECT_TIMEOUT", "CONNECTION_ENDED"]);
/** Driver error codes of a connection lost while a statement may have been out. */
const LOST = new Set(["CONNECTION_CLOSED", "CONNECTION_DESTROYED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/**
 * A failed call's error as one of the store fault classes (errors.ts). The server's own error
 * answers (SQLSTATE) roll their transaction back, so nothing took effect: the data classes (22 data
 * exception, 23 integrity, 54 program limit) are the request's fault, the rest (out of disk, too many
 * connections, starting up, serialization) the database's. A connection lost with a statement out,
 * or a statement past its deadline, leaves the outcome unknown. Anything else (a fault in this code)
 * is returned as it is.
 */
export function storeFault(err: unknown, what: string): unknown {
  if (err instanceof StoreUnavailableError || err instanceof StoreOutcomeUnknownError || err instanceof StoreRejectedError) return err;
  const message = `${what}: ${errorMessage(err, 300)}`;
  if (err instanceof postgres.PostgresError) {
    const state = err.code;
    // Terminated by an operator or a crash: the statement may have been committing.
    if (state === "57P01" || state === "57P02") return new StoreOutcomeUnknownError(message, { cause: err });
    if (/^(22|23|54)/.test(state)) return new StoreRejectedError(`${message} (SQLSTATE ${state})`, { cause: err });
    return new StoreUnavailableError(`${message} (SQLSTATE ${state})`, { cause: err });
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && NOT_SENT.has(code)) return new StoreUnavailableError(message, { cause: err });
  if (typeof code === "string" && LOST.has(code)) return new StoreOutcomeUnknownError(message, { cause: err });
  return err;
}

/**
 * libpq's way of naming a Unix socket, `?host=/var/run/postgresql` (a directory), which postgres.js
 * does not read from a URL: turned into its `path` option. A database on the same machine answers
 * a round trip over the socket sooner than over loopback TCP.
 */
export function socketOf(url: string): { url: string; path?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url };
  }
  const host = u.searchParams.get("host");
  if (host === null || !host.startsWith("/")) return { url };
  u.searchParams.delete("host");
  return { url: u.toString(), path: `${host.replace(/\/+$/, "")}/.s.PGSQL.${u.port || "5432"}` };
}

export function createPostgresStore(opts: PostgresStoreOptions): Store & StoreTestHooks {
  const target = socketOf(opts.url);
  const open = (max = opts.max ?? 10): Sql => postgres(target.url, {
    ...(target.path !== undefined && { path: target.path }),
    max,
    connect_timeout: opts.connectTimeoutS ?? 5,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: opts.onNotice ?? (() => {}),
    // int8 ids and counts as JS numbers (ids stay below 2^53).
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
    connection: { application_name: "jobqueue" },
    // postgres.js grows its reconnect delay as 3^errors/100 s up to 20 s, shared by the pool, so
    // after a short outage connections sat idle for 10-20 s. Cap it: back within a second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, RECONNECT_CAP_S),
  }) as unknown as Sql;
  let sql = open();
  /** Statements on the pool as it is when each one runs (replacePool swaps it). */
  const db = {
    query: <R>(text: string, params?: readonly unknown[]) => on(sql).query<R>(text, params),
    begin: <T>(fn: (tx: Transaction) => Promise<T>) => sql.begin((tx) => fn(on(tx))) as Promise<T>,
  };
  const localClock = opts.localClock ?? Date.now;
  /** The server's clock minus this process's, from the last good measurement (measureClock). */
  let clockOffsetMs = 0;
  /**
   * One reading of the server's clock against ours: its reading is taken as of the midpoint of the
   * round trip, so the error is at most half the round trip. Readings over a slow round trip are
   * not kept (the previous offset stays).
   */
  async function measureClock(q: Queries): Promise<void> {
    const before = localClock();
    const [row] = await q.query<{ now: number }>(`SELECT ${ms("clock_timestamp()")} AS now`);
    const after = localClock();
    if (row && after - before <= MAX_CLOCK_READING_RTT_MS) clockOffsetMs = row.now - (before + after) / 2;
  }
  /** Tags this store's own NOTIFYs so its listener can ignore them. */
  const instance = crypto.randomUUID();
  let announcing = false;
  let lastAnnounce = -Infinity;

  /**
   * The node id this process holds: a session advisory lock on a connection of its own (never
   * replaced with the pool), and that session's backend pid, which changes when the connection was
   * lost and reopened (the lock went with the old session).
   */
  let node: { id: string; conn: Sql; pid: number } | null = null;

  /** Take (or take again) the node id's lock on `conn`; NodeIdInUseError names the holder when known. */
  async function lockNodeId(id: string, conn: Sql): Promise<number> {
    const key = `jobqueue.node:${id}`;
    const [row] = await on(conn).query<{ held: boolean; pid: number }>(`
      SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held, pg_backend_pid() AS pid`, [key]);
    if (row?.held) return row.pid;
    const holder = await on(conn).query<{ addr: string | null; since: Date | null }>(`
      SELECT host(a.client_addr) AS addr, a.backend_start AS since FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND (l.classid::bigint << 32) | l.objid::bigint = hashtextextended($1, 0)`, [key]).catch(() => []);
    const h = holder[0];
    throw new NodeIdInUseError(id, h ? ` (its database session ${h.addr ? `from ${h.addr} ` : ""}started ${h.since?.toISOString() ?? "earlier"})` : "");
  }

  /** Drop a pool that stopped answering; the next statement opens fresh connections. */
  function replacePool(): void {
    const old = sql;
    sql = open();
    old.end({ timeout: 0 }).catch(() => {});
  }

  /**
   * A store method that runs under the deadline, with the driver's errors turned into store faults.
   * A call that overruns the deadline fails with an unknown outcome and replaces the pool.
   */
  function op<A extends unknown[], R>(what: string, fn: (...args: A) => Promise<R>): Guarded<(...args: A) => Promise<R>> {
    const method = (...args: A): Promise<R> => {
      const pool = sql;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          if (sql === pool) replacePool();
          reject(new StoreOutcomeUnknownError(`${what} got no answer from PostgreSQL within ${STATEMENT_DEADLINE_MS} ms; the connection pool was replaced`));
        }, STATEMENT_DEADLINE_MS);
      });
      return Promise.race([fn(...args), deadline])
        .catch((err: unknown) => {
          throw storeFault(err, what);
        })
        .finally(() => clearTimeout(timer));
    };
    return method as Guarded<typeof method>;
  }

  /** A store method that runs without the deadline, and its driver's errors as they are, for the reason given. */
  function exempt<F extends (...args: never[]) => unknown>(_why: string, fn: F): Guarded<F> {
    return fn as Guarded<F>;
  }

  const ids = (refs: ReadonlyArray<{ id: number }>) => refs.map((r) => r.id);

  /**
   * One statement that inserts jobs into pending_jobs, except those with a lease, which go straight
   * to inflight_jobs as their first attempt. `rowIds` gives the ids (keyed inserts draw them first);
   * null draws them from the sequence in input order. Returns the ids in input order.
   */
  async function insertSplit(q: Queries, rows: NewJob[], now: number, rowIds: number[] | null): Promise<number[]> {
    const got = await q.query<{ id: number }>(`
      WITH t AS MATERIALIZED (
        SELECT coalesce(t.given_id, nextval('jobs_id_seq')) AS id, t.*
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int2[], $5::int4[], $6::int4[], $7::float8[], $8::text[], $9::float8[])
             WITH ORDINALITY AS t(given_id, type, payload, priority, max_attempts, timeout_ms, run_at, owner, lease_until, ord)
        ORDER BY t.ord),
      queued AS (
        INSERT INTO pending_jobs (id, type, payload, priority, max_attempts, timeout_ms, run_at, created_at)
        SELECT id, type, payload::json, priority, max_attempts, timeout_ms, ${at("run_at")}, ${at("$10")}
        FROM t WHERE owner IS NULL),
      started AS (
        INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
                                   picked_at, lease_until, owner)
        SELECT id, type, payload::json, priority, 1, max_attempts, timeout_ms, ${at("run_at")},
               ${at("$10")}, ${at("$10")}, ${at("lease_until")}, owner
        FROM t WHERE owner IS NOT NULL)
      SELECT id FROM t ORDER BY ord`,
      [rowIds ?? rows.map(() => null), rows.map((j) => j.type), rows.map((j) => j.payload), rows.map((j) => j.priority),
       rows.map((j) => j.maxAttempts), rows.map((j) => j.timeoutMs), rows.map((j) => j.runAt),
       rows.map((j) => j.lease?.owner ?? null), rows.map((j) => j.lease?.until ?? null), now]);
    return got.map((r) => r.id);
  }

  const attempts = (refs: ReadonlyArray<ClaimRef>) => refs.map((r) => r.attempt);

  /** Delete rows by id and release their idempotency keys, in one statement; result[i] per id. */
  async function deleteReleasingKeys(table: "pending_jobs" | "dead_jobs", idList: number[]): Promise<boolean[]> {
    if (idList.length === 0) return [];
    const rows = await db.query<{ id: number }>(`
      WITH done AS (DELETE FROM ${table} WHERE id = ANY($1::bigint[]) RETURNING id),
      released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id)
      SELECT id FROM done`, [idList]);
    return idsTookEffect(idList, rows);
  }

  const store: StoreInfo & Methods<Omit<Store, keyof StoreInfo> & StoreTestHooks> = {
    kind: "postgres",
    location: redactUrl(opts.url),
    blocking: false,
    clock: () => localClock() + clockOffsetMs,

    migrate: exempt("may wait as long as another process's migration holds the migration lock", async () => {
      await db.begin(async (tx) => {
        // Serialise concurrent start-ups: the second waits, then finds everything applied.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('jobqueue.migrate'))");
        await tx.script(MIGRATIONS_TABLE.postgres);
        const applied = new Set((await tx.query<{ version: number }>(APPLIED_VERSIONS)).map((r) => r.version));
        for (const m of toApply("postgres", applied)) {
          await tx.script(m.sql);
          await tx.query(RECORD_MIGRATION.postgres, [m.version, m.name]);
        }
      });
      await measureClock(on(sql));
    }),

    insert: op("insert", async (jobs: NewJob[], now: number) => {
      if (jobs.length === 0) return [];
      if (jobs.some((j) => j.idempotencyKey !== undefined)) return (await store.add(jobs, now)).map((r) => r.id);
      if (jobs.some((j) => j.lease !== undefined)) return (await insertSplit(db, jobs, now, null)).sort((a, b) => a - b);
      const rows = await db.query<{ id: number }>(`
        INSERT INTO pending_jobs (type, payload, priority, max_attempts, timeout_ms, run_at, created_at)
        SELECT t.type, t.payload::json, t.priority, t.max_attempts, t.timeout_ms,
               ${at("t.run_at")}, ${at("$1")}
        FROM unnest($2::text[], $3::text[], $4::int2[], $5::int4[], $6::int4[], $7::float8[])
             WITH ORDINALITY AS t(type, payload, priority, max_attempts, timeout_ms, run_at, ord)
        ORDER BY t.ord
        RETURNING id`,
        [now, jobs.map((j) => j.type), jobs.map((j) => j.payload), jobs.map((j) => j.priority), jobs.map((j) => j.maxAttempts),
         jobs.map((j) => j.timeoutMs), jobs.map((j) => j.runAt)]);
      // INSERT … SELECT … ORDER BY assigns nextval in that order, and RETURNING follows it.
      return rows.map((r) => r.id).sort((a, b) => a - b);
    }),

    claim: op("claim", async (claimIds: number[], owner: string, now: number, leaseMs: number) => {
      if (claimIds.length === 0) return [];
      // The due check compares epoch ms, an expression no index covers, so the only index path
      // is the primary key. Written as run_at <= …, a generic plan made while pending_jobs was
      // small (its row count stale while submits pour in) took pending_jobs_run_at_idx instead
      // and filtered every due row (tests/postgres-plans.test.ts holds the claim to the key).
      const rows = await db.query<JobRow>(`
        WITH moved AS (
          DELETE FROM pending_jobs WHERE id = ANY($1::bigint[]) AND ${ms("run_at")} <= $2::float8
          RETURNING *)
        ${CLAIM_INTO_INFLIGHT("$2", "$3", "$4")}`, [claimIds, now, now + leaseMs, owner]);
      return rows.map(toClaimed);
    }),

    complete: op("complete", async (refs: CompleteMove[], keep?: { finishedAt: number; expiresAt: number }) => {
      if (refs.length === 0) return [];
      if (keep !== undefined) {
        // The job leaves a small record behind and keeps its idempotency key until it is pruned.
        const kept = await db.query<{ id: number; attempts: number }>(`
          WITH done AS (
            DELETE FROM inflight_jobs j
            USING unnest($1::bigint[], $2::int4[], $3::text[]) AS f(id, attempts, result)
            WHERE j.id = f.id AND j.attempts = f.attempts
            RETURNING j.*, f.result AS result),
          kept AS (
            INSERT INTO completed_jobs (id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result)
            SELECT id, type, priority, attempts, max_attempts, run_at, created_at, ${at("$4")}, ${at("$5")}, result
            FROM done)
          SELECT id, attempts FROM done`,
          [ids(refs), attempts(refs), refs.map((r) => r.result ?? null), keep.finishedAt, keep.expiresAt]);
        return tookEffect(refs, kept);
      }
      const rows = await db.query<{ id: number; attempts: number }>(`
        WITH done AS (
          DELETE FROM inflight_jobs j USING unnest($1::bigint[], $2::int4[]) AS f(id, attempts)
          WHERE j.id = f.id AND j.attempts = f.attempts
          RETURNING j.id, j.attempts),
        released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id)
        SELECT id, attempts FROM done`, [ids(refs), attempts(refs)]);
      return tookEffect(refs, rows);
    }),

    retry: op("retry", async (moves: RetryMove[]) => {
      if (moves.length === 0) return [];
      const rows = await db.query<{ id: number; attempts: number }>(`
        WITH f AS (SELECT * FROM unnest($1::bigint[], $2::int4[], $3::float8[], $4::text[]) AS f(id, attempts, run_at, error)),
        moved AS (
          DELETE FROM inflight_jobs j USING f WHERE j.id = f.id AND j.attempts = f.attempts
          RETURNING j.*, f.run_at AS next_run_at, f.error AS error)
        INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error)
        SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, ${at("next_run_at")},
               created_at, error
        FROM moved
        RETURNING id, attempts`, [ids(moves), attempts(moves), moves.map((m) => m.runAt), moves.map((m) => m.error)]);
      return tookEffect(moves, rows);
    }),

    bury: op("bury", async (moves: BuryMove[], now: number) => {
      if (moves.length === 0) return [];
      const rows = await db.query<{ id: number; attempts: number }>(`
        WITH f AS (SELECT * FROM unnest($1::bigint[], $2::int4[], $3::text[]) AS f(id, attempts, error)),
        moved AS (
          DELETE FROM inflight_jobs j USING f WHERE j.id = f.id AND j.attempts = f.attempts
          RETURNING j.*, f.error AS error)
        INSERT INTO dead_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error, failed_at)
        SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, error,
               ${at("$4")}
        FROM moved
        RETURNING id, attempts`, [ids(moves), attempts(moves), moves.map((m) => m.error), now]);
      return tookEffect(moves, rows);
    }),

    extendLeases: op("extendLeases", async (refs: ClaimRef[], owner: string, leaseUntil: number) => {
      if (refs.length === 0) return [];
      const rows = await db.query<{ id: number; attempts: number }>(`
        UPDATE inflight_jobs j SET lease_until = ${at("$1")}
        FROM unnest($2::bigint[], $3::int4[]) AS f(id, attempts)
        WHERE j.id = f.id AND j.attempts = f.attempts AND j.owner = $4
        RETURNING j.id, j.attempts`, [leaseUntil, ids(refs), attempts(refs), owner]);
      return tookEffect(refs, rows);
    }),

    release: op("release", async (refs: ClaimRef[], owner: string, now: number) => {
      if (refs.length === 0) return [];
      const rows = await db.query<EntryRow>(`
        WITH moved AS (
          DELETE FROM inflight_jobs j USING unnest($1::bigint[], $2::int4[]) AS f(id, attempts)
          WHERE j.id = f.id AND j.attempts = f.attempts AND j.owner = $3
          RETURNING j.*)
        INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error)
        SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, ${at("$4")},
               created_at, last_error
        FROM moved
        RETURNING ${ENTRY_COLS}`, [ids(refs), attempts(refs), owner, now]);
      return rows.map(toEntry);
    }),

    reapExpired: op("reapExpired", async (now: number, limit: number) => {
      // SKIP LOCKED: a row whose completion or heartbeat holds the lock is not expired work;
      // the outer lease check re-reads the newest row version, so a fresh lease is never reaped.
      // A lease must have ended by the server's own clock too, so no node whose clock (or clock
      // correction) runs ahead can ever take another node's live job.
      const rows = await db.query<EntryRow>(`
        WITH expired AS (
          SELECT id FROM inflight_jobs WHERE lease_until < least(${at("$1")}, clock_timestamp())
          ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED),
        moved AS (
          DELETE FROM inflight_jobs j USING expired e
          WHERE j.id = e.id AND j.lease_until < least(${at("$1")}, clock_timestamp())
          RETURNING j.*)
        ${HAND_BACK(at("$1"), "'lease expired'", at("$1"))}`,
        [now, limit]);
      return rows.map(toEntry);
    }),

    releaseStrays: op("releaseStrays", async (owner: string, keep: number[], _now: number) => {
      const rows = await db.query<EntryRow>(`
        WITH moved AS (DELETE FROM inflight_jobs WHERE owner = $1 AND id <> ALL($2::bigint[]) RETURNING *)
        INSERT INTO pending_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error)
        SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, run_at, created_at, last_error
        FROM moved
        RETURNING ${ENTRY_COLS}`, [owner, keep]);
      return rows.map(toEntry);
    }),

    recoverOwner: op("recoverOwner", async (owner: string, now: number) => {
      const rows = await db.query<EntryRow>(`
        WITH moved AS (DELETE FROM inflight_jobs WHERE owner = $1 RETURNING *)
        ${HAND_BACK("run_at", "'interrupted by a restart'", at("$2"))}`,
        [owner, now]);
      return rows.map(toEntry);
    }),

    claimNext: op("claimNext", async (limit: number, owner: string, now: number, leaseMs: number, agingMs: number, caps: TypeCap[] = []) => {
      if (limit <= 0) return [];
      // The most urgent due rows nobody else is claiming; types at their limit in the caller are
      // left out, and of each capped type at most its room is taken, most urgent first.
      const rows = await db.query<JobRow>(`
        WITH cand AS (${URGENT("$1", "$2", "$3", { capTypes: "$6::text[]", capRooms: "$7::int4[]" })}),
        caps AS (SELECT * FROM unnest($6::text[], $7::int4[]) AS c(type, room)),
        ranked AS (
          SELECT cand.id, cand.key, c.room, row_number() OVER (PARTITION BY cand.type ORDER BY cand.key, cand.id) AS rn
          FROM cand LEFT JOIN caps c ON c.type = cand.type),
        chosen AS (SELECT id FROM ranked WHERE room IS NULL OR rn <= room ORDER BY key, id LIMIT $2),
        moved AS (DELETE FROM pending_jobs WHERE id IN (SELECT id FROM chosen) RETURNING *)
        ${CLAIM_INTO_INFLIGHT("$1", "$4", "$5")}`,
        [now, limit, agingMs, now + leaseMs, owner, caps.map((c) => c.type), caps.map((c) => Math.max(0, c.room))]);
      return rows.map(toClaimed);
    }),

    peekUrgent: op("peekUrgent", async (now: number, agingMs: number, limit: number) => {
      if (limit <= 0) return [];
      const rows = await db.query<EntryRow>(`
        SELECT id, type, priority, ${ms("run_at")} AS run_at, ${ms("created_at")} AS created_at
        FROM (${URGENT("$1", "$2", "$3")}) u ORDER BY key, id LIMIT $2`, [now, limit, agingMs]);
      return rows.map(toEntry);
    }),

    announce: exempt("a coalesced hint: its caller does not wait for it and only logs a failure", async (now: number) => {
      // A hint, coalesced: at most one NOTIFY out at a time and one per ANNOUNCE_EVERY_MS.
      if (announcing || now - lastAnnounce < ANNOUNCE_EVERY_MS) return;
      announcing = true;
      lastAnnounce = now;
      try {
        await db.query("SELECT pg_notify($1, $2)", [NOTIFY_CHANNEL, instance]);
      } finally {
        announcing = false;
      }
    }),

    listen: exempt("holds a connection of its own, which a replaced pool leaves alone, for as long as it listens", async (onHint: () => void) => {
      // Its own connection: LISTEN holds it, and a replaced pool must not drop the subscription.
      const listener = open(1);
      await listener.listen(NOTIFY_CHANNEL, (from) => {
        if (from !== instance) onHint();
      });
      return async () => {
        await listener.end({ timeout: 1 });
      };
    }),

    holdNodeId: exempt("start-up, on a connection of its own, which replacing the pool would not help", async (id: string) => {
      const conn = open(1);
      try {
        node = { id, conn, pid: await lockNodeId(id, conn) };
      } catch (err) {
        await conn.end({ timeout: 1 }).catch(() => {});
        throw err;
      }
    }),

    heartbeatNode: op("heartbeatNode", async (id: string, now: number, aliveSince: number) => {
      const [row] = await db.query<{ alive: number }>(`
        WITH up AS (
          INSERT INTO jobqueue_nodes (id, started_at, heartbeat_at)
          VALUES ($1, ${at("$2")}, ${at("$2")})
          ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at)
        SELECT 1 + count(*)::int AS alive FROM jobqueue_nodes
        WHERE id <> $1 AND heartbeat_at >= ${at("$3")}`, [id, now, aliveSince]);
      // The id's lock lives in its connection's session: if that connection was replaced, take it
      // again. That idle connection also gives the quickest reading of the server's clock.
      if (node !== null && node.id === id) {
        const [session] = await on(node.conn).query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        if (session && session.pid !== node.pid) node.pid = await lockNodeId(id, node.conn);
        await measureClock(on(node.conn));
      } else await measureClock(on(sql));
      return row?.alive ?? 1;
    }),

    removeNode: op("removeNode", async (id: string) => {
      await db.query("DELETE FROM jobqueue_nodes WHERE id = $1", [id]);
    }),

    streamPending: exempt("the start-up stream reads all of pending_jobs, batch after batch, for as long as that takes", async function* (batchSize: number) {
      const cursor = sql.unsafe<EntryRow[]>(`SELECT ${ENTRY_COLS} FROM pending_jobs`).cursor(batchSize);
      for await (const rows of cursor) yield rows.map(toEntry);
    }),

    get: op("get", async (id: number, now: number) => {
      const rows = await db.query<JobRow & {
        state: string; owner: string | null; lease_until: number | null; failed_at: number | null; finished_at: number | null; result: string | null;
      }>(`
        SELECT 'pending' AS state, ${JOB_COLS}, NULL::text AS owner, NULL::float8 AS lease_until, NULL::float8 AS failed_at,
               NULL::float8 AS finished_at, NULL::text AS result
          FROM pending_jobs WHERE id = $1
        UNION ALL
        SELECT 'inflight', ${JOB_COLS}, owner, ${ms("lease_until")}, NULL, NULL, NULL FROM inflight_jobs WHERE id = $1
        UNION ALL
        SELECT 'dead', ${JOB_COLS}, NULL, NULL, ${ms("failed_at")}, NULL, NULL FROM dead_jobs WHERE id = $1
        UNION ALL
        SELECT 'completed', id, type, 'null', priority, attempts, max_attempts, NULL, ${ms("run_at")}, ${ms("created_at")}, NULL,
               NULL, NULL, NULL, ${ms("finished_at")}, result
          FROM completed_jobs WHERE id = $1`, [id]);
      const r = rows[0];
      if (!r) return null;
      const state = (r.state === "pending" && r.run_at > now ? "scheduled" : r.state) as JobState;
      const view: JobView = {
        ...toClaimed(r), state, owner: r.owner, leaseUntil: r.lease_until, failedAt: r.failed_at,
        ...(r.finished_at !== null && { finishedAt: r.finished_at, result: r.result }),
      };
      return view;
    }),

    // ---- stats ----

    stats: op("stats", async (now: number) => {
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

    // ---- completed records ----

    pruneCompleted: op("pruneCompleted", async (now: number, limit: number, legacyKeepMs: number) => {
      const rows = await db.query<{ id: number }>(`
        WITH expired AS (
          SELECT id FROM completed_jobs WHERE expires_at <= ${at("$1")}
          ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED),
        legacy AS (
          SELECT id FROM completed_jobs
          WHERE expires_at IS NULL AND finished_at <= ${at("$3")}
          ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED),
        done AS (
          DELETE FROM completed_jobs WHERE id IN (SELECT id FROM expired UNION ALL SELECT id FROM legacy LIMIT $2)
          RETURNING id),
        released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id)
        SELECT id FROM done`, [now, limit, now - legacyKeepMs]);
      return rows.length;
    }),

    // ---- idempotency keys ----

    add: op("add", async (jobs: NewJob[], now: number) => {
      if (jobs.length === 0) return [];
      if (jobs.every((j) => j.idempotencyKey === undefined)) {
        return (await store.insert(jobs, now)).map((id): InsertResult => ({ id, duplicate: false }));
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
        const rows = jobs.filter((_, i) => !results[i]!.duplicate);
        const rowIds = results.filter((r) => !r.duplicate).map((r) => r.id);
        if (rows.length > 0) await insertSplit(tx, rows, now, rowIds);
        return results;
      });
    }),

    // ---- cancel (operator actions) ----

    completeCancelled: op("completeCancelled", async (refs: ClaimRef[]) => {
      // A cancelled attempt leaves no record: the same fenced delete as a plain completion.
      return store.complete(refs);
    }),

    cancelPending: op("cancelPending", (pendingIds: number[]) => deleteReleasingKeys("pending_jobs", pendingIds)),

    // ---- dead letters (operator actions) ----

    listDead: op("listDead", async (query: DeadQuery) => {
      // The page first (LIMIT), then a running total of its payload bytes, kept while it starts within the budget.
      const rows = await db.query<JobRow & { failed_at: number }>(`
        SELECT ${JOB_COLS}, ${ms("failed_at")} AS failed_at FROM (
          SELECT *, sum(bytes) OVER (ORDER BY id) - bytes AS bytes_before FROM (
            SELECT *, octet_length(payload::text) AS bytes FROM dead_jobs
            WHERE id > $1 AND ($2::text IS NULL OR type = $2) ORDER BY id LIMIT $3) page) sized
        WHERE $4::bigint IS NULL OR bytes_before <= $4 ORDER BY id`,
        [query.afterId, query.type ?? null, query.limit, query.maxBytes ?? null]);
      return rows.map((r): JobView => ({ ...toClaimed(r), state: "dead", owner: null, leaseUntil: null, failedAt: r.failed_at }));
    }),

    retryDead: op("retryDead", async (deadIds: number[], now: number) => {
      if (deadIds.length === 0) return [];
      const rows = await db.query<EntryRow>(`
        WITH moved AS (DELETE FROM dead_jobs WHERE id = ANY($1::bigint[]) RETURNING *)
        ${FROM_DEAD(at("$2"))}`, [deadIds, now]);
      return rows.map(toEntry);
    }),

    retryDeadOfType: op("retryDeadOfType", async (type: string, now: number, limit: number) => {
      // SKIP LOCKED: two operators retrying one type at once split the rows instead of queueing.
      const rows = await db.query<EntryRow>(`
        WITH picked AS (
          SELECT id FROM dead_jobs WHERE type = $1 AND failed_at <= ${at("$2")}
          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED),
        moved AS (DELETE FROM dead_jobs d USING picked p WHERE d.id = p.id RETURNING d.*)
        ${FROM_DEAD(at("$2"))}`, [type, now, limit]);
      return rows.map(toEntry);
    }),

    deleteDead: op("deleteDead", (deadIds: number[]) => deleteReleasingKeys("dead_jobs", deadIds)),

    deleteDeadOfType: op("deleteDeadOfType", async (type: string, limit: number) => {
      const rows = await db.query<{ id: number }>(`
        WITH done AS (
          DELETE FROM dead_jobs WHERE id IN (
            SELECT id FROM dead_jobs WHERE type = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
          RETURNING id),
        released AS (DELETE FROM idempotency_keys k USING done WHERE k.job_id = done.id)
        SELECT id FROM done`, [type, limit]);
      return rows.length;
    }),

    counts: op("counts", async (): Promise<StoreCounts> => {
      const [r] = await db.query<{ pending: number; inflight: number; dead: number }>(`
        SELECT (SELECT count(*) FROM pending_jobs) AS pending, (SELECT count(*) FROM inflight_jobs) AS inflight,
               (SELECT count(*) FROM dead_jobs) AS dead`);
      return r ?? { pending: 0, inflight: 0, dead: 0 };
    }),

    ping: op("ping", async () => {
      await db.query("SELECT 1");
    }),

    close: exempt("ends the connections with a timeout of its own", async () => {
      // Callers drain their own work first. After an outage postgres.js (3.4.9 on Bun) can keep a
      // dead connection that makes end() wait out its whole timeout, so keep the timeout short.
      await sql.end({ timeout: 1 });
      // Ending the node id's session releases its lock.
      await node?.conn.end({ timeout: 1 });
      node = null;
    }),
  };
  return store;
}
