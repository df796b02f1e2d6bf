// index.ts: the embedded SQLite Store (bun:sqlite) for one process. Every state move is one
// immediate transaction, every move out of inflight is fenced by (id, attempts), and the database
// file is locked to this process while open. No scheduling decisions here.
import { Database, SQLiteError, type SQLQueryBindings } from "bun:sqlite";
import { accessSync, constants, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { StoreRejectedError, StoreUnavailableError, errorMessage } from "../../errors.ts";
import { APPLIED_VERSIONS, MIGRATIONS_TABLE, RECORD_MIGRATION, toApply } from "../migrate.ts";
import type { Store, StoreTestHooks } from "../store.ts";
import type { BuryMove, ClaimRef, ClaimedJob, CompleteMove, DeadQuery, InsertResult, JobState, JobView, NewJob, PendingEntry, RetryMove, StoreCounts, StatsRow, TypeCap } from "../rows.ts";
import { statsFromRows } from "../rows.ts";

/** Priorities run from 0 to this; the most urgent due rows are found with one probe per priority. */
const MAX_PRIORITY = 100;

export interface SqliteStoreOptions {
  /** The database file; created, with its directory, when missing. */
  path: string;
  /** FULL (default) syncs the WAL on every commit; NORMAL may lose the last commits on power loss. */
  synchronous?: "FULL" | "NORMAL";
}

/** Another process (or another store in this one) has the database file open. */
export class StoreLockedError extends Error {
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`the database ${path} is in use by another jobqueue process (lock held)`, options);
    this.name = "StoreLockedError";
  }
}

// Columns aliased to the shapes that cross the Store interface, so rows need no mapping.
const JOB_COLS = `id, type, payload, priority, attempts, max_attempts AS maxAttempts, timeout_ms AS timeoutMs,
  run_at AS runAt, created_at AS createdAt, last_error AS lastError`;
const ENTRY_COLS = "id, type, priority, run_at AS runAt, created_at AS createdAt";
const COPY_COLS = "id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error";

type ViewRow = Omit<JobView, "state" | "finishedAt" | "result"> & {
  state: "pending" | "inflight" | "dead" | "completed"; finishedAt: number | null; result: string | null;
};

/** Every statement the store runs, prepared once (after migration: they name its tables). */
function prepareStatements(db: Database) {
  const p = <R, P extends SQLQueryBindings[]>(sql: string) => db.prepare<R, P>(sql);
  return {
    bumpIds: p<{ last_id: number }, [count: number]>("UPDATE job_ids SET last_id = last_id + ? RETURNING last_id"),
    insertPending: p<never, [id: number, type: string, payload: string, priority: number, maxAttempts: number,
      timeoutMs: number | null, runAt: number, createdAt: number]>(`
      INSERT INTO pending_jobs (id, type, payload, priority, max_attempts, timeout_ms, run_at, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    // A job that starts at once: its first attempt, leased in the insert's own transaction.
    insertStarted: p<never, [id: number, type: string, payload: string, priority: number, maxAttempts: number,
      timeoutMs: number | null, runAt: number, createdAt: number, pickedAt: number, leaseUntil: number, owner: string]>(`
      INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
                                 picked_at, lease_until, owner)
      VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)`),
    claimDue: p<ClaimedJob, [now: number, leaseUntil: number, owner: string, id: number, now: number]>(`
      INSERT INTO inflight_jobs (${COPY_COLS}, picked_at, lease_until, owner)
      SELECT id, type, payload, priority, attempts + 1, max_attempts, timeout_ms, run_at, created_at, last_error, ?, ?, ?
      FROM pending_jobs WHERE id = ? AND run_at <= ?
      RETURNING ${JOB_COLS}`),
    deletePending: p<never, [id: number]>("DELETE FROM pending_jobs WHERE id = ?"),
    deleteInflight: p<never, [id: number]>("DELETE FROM inflight_jobs WHERE id = ?"),
    completeFenced: p<never, [id: number, attempt: number]>("DELETE FROM inflight_jobs WHERE id = ? AND attempts = ?"),
    retryFenced: p<never, [runAt: number, error: string, id: number, attempt: number]>(`
      INSERT INTO pending_jobs (${COPY_COLS})
      SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, ?, created_at, ?
      FROM inflight_jobs WHERE id = ? AND attempts = ?`),
    buryFenced: p<never, [error: string, failedAt: number, id: number, attempt: number]>(`
      INSERT INTO dead_jobs (${COPY_COLS}, failed_at)
      SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, ?, ?
      FROM inflight_jobs WHERE id = ? AND attempts = ?`),
    extendFenced: p<never, [leaseUntil: number, id: number, attempt: number, owner: string]>(
      "UPDATE inflight_jobs SET lease_until = ? WHERE id = ? AND attempts = ? AND owner = ?"),
    // Shutdown hand-back: the attempt this process aborted itself is not counted.
    releaseFenced: p<PendingEntry, [now: number, id: number, attempt: number, owner: string]>(`
      INSERT INTO pending_jobs (${COPY_COLS})
      SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, ?, created_at, last_error
      FROM inflight_jobs WHERE id = ? AND attempts = ? AND owner = ?
      RETURNING ${ENTRY_COLS}`),
    expiredIds: p<{ id: number }, [now: number, limit: number]>(
      "SELECT id FROM inflight_jobs WHERE lease_until < ? ORDER BY lease_until LIMIT ?"),
    ownerIds: p<{ id: number }, [owner: string]>("SELECT id FROM inflight_jobs WHERE owner = ? ORDER BY id"),
    // A row leased by a claim or insert whose answer was lost: back as it was, no attempt counted.
    releaseStray: p<PendingEntry, [id: number]>(`
      INSERT INTO pending_jobs (${COPY_COLS})
      SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, run_at, created_at, last_error
      FROM inflight_jobs WHERE id = ?
      RETURNING ${ENTRY_COLS}`),
    // The oldest due rows of one priority, leaving out some types (a JSON array) (pending_jobs_priority_run_at_idx).
    dueOfPriority: p<PendingEntry, [priority: number, now: number, skipTypes: string, limit: number]>(
      `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE priority = ? AND run_at <= ?
         AND type NOT IN (SELECT value FROM json_each(?)) ORDER BY run_at, id LIMIT ?`),
    dueOfPriorityType: p<PendingEntry, [priority: number, type: string, now: number, limit: number]>(
      `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE priority = ? AND type = ? AND run_at <= ? ORDER BY run_at, id LIMIT ?`),
    // A hand-back without a verdict (lease expired, restart) keeps the attempt counted, so a job
    // that kills its process on every run is dead-lettered after max_attempts runs, not looped.
    handBackDead: p<never, [error: string, failedAt: number, id: number]>(`
      INSERT INTO dead_jobs (${COPY_COLS}, failed_at)
      SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
             ? || ' on the final attempt', ?
      FROM inflight_jobs WHERE id = ? AND attempts >= max_attempts`),
    handBackPending: p<PendingEntry, [runAt: number | null, error: string, id: number]>(`
      INSERT INTO pending_jobs (${COPY_COLS})
      SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, coalesce(?, run_at), created_at,
             coalesce(last_error, ?)
      FROM inflight_jobs WHERE id = ? AND attempts < max_attempts
      RETURNING ${ENTRY_COLS}`),
    pendingPage: p<PendingEntry, [afterId: number, limit: number]>(
      `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE id > ? ORDER BY id LIMIT ?`),
    get: p<ViewRow, [id: number, id: number, id: number, id: number]>(`
      SELECT 'pending' AS state, ${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, NULL AS failedAt, NULL AS finishedAt, NULL AS result
        FROM pending_jobs WHERE id = ?
      UNION ALL
      SELECT 'inflight', ${JOB_COLS}, owner, lease_until, NULL, NULL, NULL FROM inflight_jobs WHERE id = ?
      UNION ALL
      SELECT 'dead', ${JOB_COLS}, NULL, NULL, failed_at, NULL, NULL FROM dead_jobs WHERE id = ?
      UNION ALL
      SELECT 'completed', id, type, 'null', priority, attempts, max_attempts, NULL, run_at, created_at, NULL,
             NULL, NULL, NULL, finished_at, result
        FROM completed_jobs WHERE id = ?`),
    counts: p<StoreCounts, []>(`
      SELECT (SELECT count(*) FROM pending_jobs) AS pending, (SELECT count(*) FROM inflight_jobs) AS inflight,
             (SELECT count(*) FROM dead_jobs) AS dead`),
    // Stats: one grouped query per table.
    stats: p<StatsRow, [now: number, now: number, now: number]>(`
      SELECT 'pending' AS state, type, sum(run_at <= ?) AS n, sum(run_at > ?) AS later,
             min(CASE WHEN run_at <= ? THEN run_at END) AS oldest
        FROM pending_jobs GROUP BY type
      UNION ALL SELECT 'inflight', type, count(*), 0, NULL FROM inflight_jobs GROUP BY type
      UNION ALL SELECT 'dead', type, count(*), 0, NULL FROM dead_jobs GROUP BY type
      UNION ALL SELECT 'completed', type, count(*), 0, NULL FROM completed_jobs GROUP BY type`),
    // Completed records (--keep-completed).
    keepCompleted: p<never, [finishedAt: number, expiresAt: number, result: string | null, id: number, attempt: number]>(`
      INSERT INTO completed_jobs (id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result)
      SELECT id, type, priority, attempts, max_attempts, run_at, created_at, ?, ?, ?
      FROM inflight_jobs WHERE id = ? AND attempts = ?`),
    expiredCompleted: p<{ id: number }, [now: number, limit: number]>(
      "SELECT id FROM completed_jobs WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"),
    legacyCompleted: p<{ id: number }, [before: number, limit: number]>(
      "SELECT id FROM completed_jobs WHERE expires_at IS NULL AND finished_at <= ? ORDER BY finished_at LIMIT ?"),
    deleteCompleted: p<never, [id: number]>("DELETE FROM completed_jobs WHERE id = ?"),
    // Idempotency keys.
    keyHolder: p<{ job_id: number }, [key: string]>("SELECT job_id FROM idempotency_keys WHERE key = ?"),
    takeKey: p<never, [key: string, jobId: number, createdAt: number]>(
      "INSERT INTO idempotency_keys (key, job_id, created_at) VALUES (?, ?, ?)"),
    releaseKey: p<never, [jobId: number]>("DELETE FROM idempotency_keys WHERE job_id = ?"),
    // Cancel (operator actions).
    cancelPending: p<never, [id: number]>("DELETE FROM pending_jobs WHERE id = ?"),
    // Dead letters (operator actions).
    // The page first (LIMIT), then a running total of its payload bytes, kept while it starts within the budget.
    deadPage: p<Omit<JobView, "state" | "finishedAt" | "result">, [afterId: number, type: string | null, type: string | null, limit: number, maxBytes: number | null, maxBytes: number | null]>(`
      SELECT ${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, failed_at AS failedAt FROM (
        SELECT *, sum(bytes) OVER (ORDER BY id) - bytes AS bytes_before FROM (
          SELECT *, length(CAST(payload AS BLOB)) AS bytes FROM dead_jobs
          WHERE id > ? AND (? IS NULL OR type = ?) ORDER BY id LIMIT ?))
      WHERE ? IS NULL OR bytes_before <= ? ORDER BY id`),
    deadIdsOfType: p<{ id: number }, [type: string, failedBy: number, limit: number]>(
      "SELECT id FROM dead_jobs WHERE type = ? AND failed_at <= ? ORDER BY id LIMIT ?"),
    deadIdsOfTypeAll: p<{ id: number }, [type: string, limit: number]>(
      "SELECT id FROM dead_jobs WHERE type = ? ORDER BY id LIMIT ?"),
    reviveDead: p<PendingEntry, [runAt: number, id: number]>(`
      INSERT INTO pending_jobs (${COPY_COLS})
      SELECT id, type, payload, priority, 0, max_attempts, timeout_ms, ?, created_at, last_error
      FROM dead_jobs WHERE id = ?
      RETURNING ${ENTRY_COLS}`),
    deleteDead: p<never, [id: number]>("DELETE FROM dead_jobs WHERE id = ?"),
    ping: p<{ one: number }, []>("SELECT 1 AS one"),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

/**
 * Open the file and take the single-process lock: WAL under locking_mode=EXCLUSIVE makes SQLite
 * hold an exclusive file lock from the first access until close. The OS drops it when the
 * process dies (kill -9 included); any other connection, in this process or another, gets
 * SQLITE_BUSY at once (busy_timeout 0 while probing) and is refused with StoreLockedError.
 */
function openLocked(path: string, synchronous: "FULL" | "NORMAL"): Database {
  const db = new Database(path, { create: true, readwrite: true });
  try {
    db.run("PRAGMA busy_timeout = 0");
    // Before the first access: the WAL index then lives in heap memory, not a shared -shm file.
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get();
    if (mode?.journal_mode.toLowerCase() !== "wal") throw new Error(`cannot put ${path} in WAL mode (got ${mode?.journal_mode})`);
    // A write transaction settles it: from here the exclusive lock is held until close().
    db.run("BEGIN IMMEDIATE");
    db.run("COMMIT");
    db.run(`PRAGMA synchronous = ${synchronous}`);
    db.run("PRAGMA busy_timeout = 5000");
    return db;
  } catch (err) {
    db.close(true);
    if (err instanceof SQLiteError && err.code?.startsWith("SQLITE_BUSY")) throw new StoreLockedError(path, { cause: err });
    throw err;
  }
}

/** SQLite result codes of a statement refused for the data it carried (the rest are the file's or the disk's). */
const DATA_CODES = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/;

/**
 * A failed call's error as a store fault (errors.ts). Every move is one synchronous transaction that
 * SQLite rolls back when it fails, so the outcome is always known: nothing took effect. Errors that
 * are not SQLite's (a fault in this code) are returned as they are.
 */
function storeFault(err: unknown, what: string): unknown {
  if (!(err instanceof SQLiteError)) return err;
  const message = `${what}: ${errorMessage(err, 300)} (${err.code ?? "SQLITE_ERROR"})`;
  return DATA_CODES.test(err.code ?? "") ? new StoreRejectedError(message, { cause: err }) : new StoreUnavailableError(message, { cause: err });
}

/** Refuse a read-only data directory at start with a clear message (SQLite only says "disk I/O error"). */
function assertWritable(dir: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "EROFS" ? "it is on a read-only file system" : `it is not writable (${code ?? String(err)})`;
    throw new Error(`cannot open the embedded store in ${dir}: ${why}`);
  }
}

export function createSqliteStore(opts: SqliteStoreOptions): Store & StoreTestHooks {
  const location = resolve(opts.path);
  mkdirSync(dirname(location), { recursive: true });
  assertWritable(dirname(location));
  const db = openLocked(location, opts.synchronous ?? "FULL");
  let prepared: Statements | null = null;
  const q = () => (prepared ??= prepareStatements(db));

  const migrateTx = db.transaction(() => {
    db.run(MIGRATIONS_TABLE.sqlite);
    const applied = new Set(db.query<{ version: number }, []>(APPLIED_VERSIONS).all().map((r) => r.version));
    for (const m of toApply("sqlite", applied)) {
      db.run(m.sql);
      db.run(RECORD_MIGRATION.sqlite, [m.version, m.name]);
    }
  });

  /** One job's row: pending, or (with a lease) inflight as its first attempt. */
  const insertRow = (s: Statements, id: number, j: NewJob, now: number) => {
    if (j.lease === undefined) s.insertPending.run(id, j.type, j.payload, j.priority, j.maxAttempts, j.timeoutMs, j.runAt, now);
    else s.insertStarted.run(id, j.type, j.payload, j.priority, j.maxAttempts, j.timeoutMs, j.runAt, now, now, j.lease.until, j.lease.owner);
  };

  const insertTx = db.transaction((jobs: NewJob[], now: number) => {
    const s = q();
    const last = s.bumpIds.get(jobs.length)!.last_id;
    const first = last - jobs.length + 1;
    return jobs.map((j, i) => {
      insertRow(s, first + i, j, now);
      return first + i;
    });
  });

  /** After a job left the system for good (changes > 0), release its idempotency key. */
  const removed = (changes: number, id: number) => {
    if (changes === 0) return false;
    q().releaseKey.run(id);
    return true;
  };

  const addTx = db.transaction((jobs: NewJob[], now: number) => {
    const s = q();
    // Who holds each key: a job from before this call, or the first of this call to name it.
    const holders = new Map<string, InsertResult>();
    const fresh: number[] = [];
    jobs.forEach((j, i) => {
      const key = j.idempotencyKey;
      if (key === undefined) fresh.push(i);
      else if (!holders.has(key)) {
        const held = s.keyHolder.get(key);
        if (held) holders.set(key, { id: held.job_id, duplicate: true });
        else {
          holders.set(key, { id: -1, duplicate: false });
          fresh.push(i);
        }
      }
    });
    const last = fresh.length > 0 ? s.bumpIds.get(fresh.length)!.last_id : 0;
    const idOf = new Map(fresh.map((i, n) => [i, last - fresh.length + 1 + n]));
    for (const i of fresh) {
      const j = jobs[i]!;
      const id = idOf.get(i)!;
      insertRow(s, id, j, now);
      if (j.idempotencyKey !== undefined) {
        s.takeKey.run(j.idempotencyKey, id, now);
        holders.set(j.idempotencyKey, { id, duplicate: false });
      }
    }
    return jobs.map((j, i): InsertResult => {
      if (j.idempotencyKey === undefined) return { id: idOf.get(i)!, duplicate: false };
      const h = holders.get(j.idempotencyKey)!;
      return idOf.has(i) ? h : { id: h.id, duplicate: true };
    });
  });

  const claimTx = db.transaction((ids: number[], owner: string, now: number, leaseMs: number) => {
    const s = q();
    const claimed: ClaimedJob[] = [];
    for (const id of ids) {
      const row = s.claimDue.get(now, now + leaseMs, owner, id, now);
      if (!row) continue;
      s.deletePending.run(id);
      claimed.push(row);
    }
    return claimed;
  });

  /**
   * The most urgent due pending rows by aging key (run_at − priority × agingMs, then id), most urgent
   * first: the `limit` oldest of each priority hold the `limit` most urgent overall. Capped types are
   * left out of those probes and get their own, at most `room` rows per priority, so a capped type's
   * backlog cannot crowd the others out (room 0: none).
   */
  const urgent = (now: number, agingMs: number, limit: number, caps: TypeCap[] = []) => {
    const s = q();
    const skip = JSON.stringify(caps.map((c) => c.type));
    const rows: PendingEntry[] = [];
    for (let priority = 0; priority <= MAX_PRIORITY; priority++) {
      rows.push(...s.dueOfPriority.all(priority, now, skip, limit));
      for (const c of caps) if (c.room > 0) rows.push(...s.dueOfPriorityType.all(priority, c.type, now, Math.min(c.room, limit)));
    }
    const key = (e: PendingEntry) => e.runAt - e.priority * agingMs;
    return rows.sort((a, b) => key(a) - key(b) || a.id - b.id);
  };

  const claimNextTx = db.transaction((limit: number, owner: string, now: number, leaseMs: number, agingMs: number, caps: TypeCap[]) => {
    // Per-type caps: full types are left out, capped ones taken up to their room, most urgent first.
    const room = new Map(caps.map((c) => [c.type, c.room]));
    const chosen: number[] = [];
    for (const e of urgent(now, agingMs, limit, caps)) {
      if (chosen.length === limit) break;
      const left = room.get(e.type);
      if (left !== undefined) {
        if (left <= 0) continue;
        room.set(e.type, left - 1);
      }
      chosen.push(e.id);
    }
    return claimTx(chosen, owner, now, leaseMs);
  });

  /** After a fenced INSERT … SELECT copied a row out of inflight (changes > 0), remove the original. */
  const movedOut = (changes: number, id: number) => {
    if (changes === 0) return false;
    q().deleteInflight.run(id);
    return true;
  };
  const retryTx = db.transaction((moves: RetryMove[]) =>
    moves.map((m) => movedOut(q().retryFenced.run(m.runAt, m.error, m.id, m.attempt).changes, m.id)));
  const buryTx = db.transaction((moves: BuryMove[], now: number) =>
    moves.map((m) => movedOut(q().buryFenced.run(m.error, now, m.id, m.attempt).changes, m.id)));

  const completeTx = db.transaction((refs: ClaimRef[]) => refs.map((r) => removed(q().completeFenced.run(r.id, r.attempt).changes, r.id)));
  // Kept: a completed record replaces the row, and the idempotency key stays until it is pruned.
  const completeKeptTx = db.transaction((refs: CompleteMove[], finishedAt: number, expiresAt: number) =>
    refs.map((r) => movedOut(q().keepCompleted.run(finishedAt, expiresAt, r.result ?? null, r.id, r.attempt).changes, r.id)));
  const pruneCompletedTx = db.transaction((now: number, limit: number, legacyKeepMs: number) => {
    const s = q();
    const ids = s.expiredCompleted.all(now, limit).map((r) => r.id);
    if (ids.length < limit) ids.push(...s.legacyCompleted.all(now - legacyKeepMs, limit - ids.length).map((r) => r.id));
    for (const id of ids) removed(s.deleteCompleted.run(id).changes, id);
    return ids.length;
  });

  const extendTx = db.transaction((refs: ClaimRef[], owner: string, leaseUntil: number) =>
    refs.map((r) => q().extendFenced.run(leaseUntil, r.id, r.attempt, owner).changes > 0));

  const releaseTx = db.transaction((refs: ClaimRef[], owner: string, now: number) => {
    const s = q();
    const back: PendingEntry[] = [];
    for (const r of refs) {
      const entry = s.releaseFenced.get(now, r.id, r.attempt, owner);
      if (!entry) continue;
      s.deleteInflight.run(r.id);
      back.push(entry);
    }
    return back;
  });

  /** Hand inflight rows back without a verdict: final attempts to dead, the rest to pending. */
  const handBack = (ids: number[], runAt: number | null, error: string, now: number) => {
    const s = q();
    const back: PendingEntry[] = [];
    for (const id of ids) {
      const entry = s.handBackPending.get(runAt, error, id);
      if (entry) back.push(entry);
      else s.handBackDead.run(error, now, id);
      s.deleteInflight.run(id);
    }
    return back;
  };
  const releaseStraysTx = db.transaction((owner: string, keep: number[]) => {
    const s = q();
    const kept = new Set(keep);
    const back: PendingEntry[] = [];
    for (const { id } of s.ownerIds.all(owner)) {
      if (kept.has(id)) continue;
      const entry = s.releaseStray.get(id);
      if (!entry) continue;
      s.deleteInflight.run(id);
      back.push(entry);
    }
    return back;
  });
  const reapTx = db.transaction((now: number, limit: number) =>
    handBack(q().expiredIds.all(now, limit).map((r) => r.id), now, "lease expired", now));
  const recoverTx = db.transaction((owner: string, now: number) =>
    handBack(q().ownerIds.all(owner).map((r) => r.id), null, "interrupted by a restart", now));

  const completeCancelledTx = db.transaction((refs: ClaimRef[]) =>
    refs.map((r) => removed(q().completeFenced.run(r.id, r.attempt).changes, r.id)));
  const cancelPendingTx = db.transaction((ids: number[]) => ids.map((id) => removed(q().cancelPending.run(id).changes, id)));

  /** Dead → pending for each id that is dead (attempts 0, due at `now`). */
  const reviveDead = (ids: number[], now: number) => {
    const s = q();
    const back: PendingEntry[] = [];
    for (const id of ids) {
      const entry = s.reviveDead.get(now, id);
      if (!entry) continue;
      s.deleteDead.run(id);
      back.push(entry);
    }
    return back;
  };
  const retryDeadTx = db.transaction((ids: number[], now: number) => reviveDead(ids, now));
  const retryDeadOfTypeTx = db.transaction((type: string, now: number, limit: number) =>
    reviveDead(q().deadIdsOfType.all(type, now, limit).map((r) => r.id), now));
  const deleteDeadTx = db.transaction((ids: number[]) => ids.map((id) => removed(q().deleteDead.run(id).changes, id)));
  const deleteDeadOfTypeTx = db.transaction((type: string, limit: number) => {
    const ids = q().deadIdsOfTypeAll.all(type, limit).map((r) => r.id);
    for (const id of ids) removed(q().deleteDead.run(id).changes, id);
    return ids.length;
  });

  let closed = false;

  const store: Store & StoreTestHooks = {
    kind: "sqlite",
    location,
    blocking: true,
    // One process per file: its clock is the only one.
    clock: Date.now,

    async migrate() {
      migrateTx.immediate();
      q();
    },

    async insert(jobs: NewJob[], now: number) {
      if (jobs.length === 0) return [];
      if (jobs.some((j) => j.idempotencyKey !== undefined)) return addTx.immediate(jobs, now).map((r) => r.id);
      return insertTx.immediate(jobs, now);
    },

    async add(jobs: NewJob[], now: number) {
      if (jobs.length === 0) return [];
      return addTx.immediate(jobs, now);
    },

    async claim(ids: number[], owner: string, now: number, leaseMs: number) {
      if (ids.length === 0) return [];
      return claimTx.immediate(ids, owner, now, leaseMs);
    },

    async complete(refs: CompleteMove[], keep?: { finishedAt: number; expiresAt: number }) {
      if (refs.length === 0) return [];
      return keep === undefined ? completeTx.immediate(refs) : completeKeptTx.immediate(refs, keep.finishedAt, keep.expiresAt);
    },

    async pruneCompleted(now: number, limit: number, legacyKeepMs: number) {
      return pruneCompletedTx.immediate(now, limit, legacyKeepMs);
    },

    async retry(moves: RetryMove[]) {
      if (moves.length === 0) return [];
      return retryTx.immediate(moves);
    },

    async bury(moves: BuryMove[], now: number) {
      if (moves.length === 0) return [];
      return buryTx.immediate(moves, now);
    },

    async extendLeases(refs: ClaimRef[], owner: string, leaseUntil: number) {
      if (refs.length === 0) return [];
      return extendTx.immediate(refs, owner, leaseUntil);
    },

    async release(refs: ClaimRef[], owner: string, now: number) {
      if (refs.length === 0) return [];
      return releaseTx.immediate(refs, owner, now);
    },

    async releaseStrays(owner: string, keep: number[]) {
      return releaseStraysTx.immediate(owner, keep);
    },

    async reapExpired(now: number, limit: number) {
      return reapTx.immediate(now, limit);
    },

    async recoverOwner(owner: string, now: number) {
      return recoverTx.immediate(owner, now);
    },

    async claimNext(limit: number, owner: string, now: number, leaseMs: number, agingMs: number, caps: TypeCap[] = []) {
      if (limit <= 0) return [];
      return claimNextTx.immediate(limit, owner, now, leaseMs, agingMs, caps);
    },

    async peekUrgent(now: number, agingMs: number, limit: number) {
      if (limit <= 0) return [];
      return urgent(now, agingMs, limit).slice(0, limit);
    },

    // One process per file: there is nobody to hint or hear.
    async announce() {},
    async listen() {
      return async () => {};
    },

    // The file lock (openLocked) already makes this process the only one on the store.
    async holdNodeId() {},

    async heartbeatNode(id: string, now: number, aliveSince: number) {
      db.run(`INSERT INTO jobqueue_nodes (id, started_at, heartbeat_at) VALUES (?, ?, ?)
              ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, [id, now, now]);
      const others = db.query<{ n: number }, [string, number]>(
        "SELECT count(*) AS n FROM jobqueue_nodes WHERE id <> ? AND heartbeat_at >= ?").get(id, aliveSince);
      return 1 + (others?.n ?? 0);
    },

    async removeNode(id: string) {
      db.run("DELETE FROM jobqueue_nodes WHERE id = ?", [id]);
    },

    async *streamPending(batchSize: number) {
      // Keyset pagination: each page is a short read, so writes can run between batches.
      let after = 0;
      for (;;) {
        const page = q().pendingPage.all(after, batchSize);
        if (page.length === 0) return;
        yield page;
        after = page[page.length - 1]!.id;
        if (page.length < batchSize) return;
      }
    },

    async get(id: number, now: number) {
      const r = q().get.get(id, id, id, id);
      if (!r) return null;
      const state: JobState = r.state === "pending" && r.runAt > now ? "scheduled" : r.state;
      const { finishedAt, result, ...rest } = r;
      return { ...rest, state, ...(finishedAt !== null && { finishedAt, result }) };
    },

    async completeCancelled(refs: ClaimRef[]) {
      if (refs.length === 0) return [];
      return completeCancelledTx.immediate(refs);
    },

    async cancelPending(ids: number[]) {
      if (ids.length === 0) return [];
      return cancelPendingTx.immediate(ids);
    },

    async listDead(query: DeadQuery) {
      const type = query.type ?? null;
      const maxBytes = query.maxBytes ?? null;
      return q().deadPage.all(query.afterId, type, type, query.limit, maxBytes, maxBytes).map((r): JobView => ({ ...r, state: "dead" }));
    },

    async retryDead(ids: number[], now: number) {
      if (ids.length === 0) return [];
      return retryDeadTx.immediate(ids, now);
    },

    async retryDeadOfType(type: string, now: number, limit: number) {
      return retryDeadOfTypeTx.immediate(type, now, limit);
    },

    async deleteDead(ids: number[]) {
      if (ids.length === 0) return [];
      return deleteDeadTx.immediate(ids);
    },

    async deleteDeadOfType(type: string, limit: number) {
      return deleteDeadOfTypeTx.immediate(type, limit);
    },

    async stats(now: number) {
      return statsFromRows(q().stats.all(now, now, now));
    },

    async counts() {
      return q().counts.get() ?? { pending: 0, inflight: 0, dead: 0 };
    },

    async ping() {
      q().ping.get();
    },

    async close() {
      if (closed) return;
      closed = true;
      // close(true) finalizes the prepared statements too, so the connection (and with it the
      // file lock) goes now, not whenever the statements are garbage collected.
      db.close(true);
    },
  };
  // Every call fails as a store fault, and a call on a closed store as unavailable (the driver only
  // says "Database has closed"). streamPending is the start-up stream, run before anything can close;
  // clock reads no file.
  for (const [name, fn] of Object.entries(store)) {
    if (typeof fn !== "function" || name === "close" || name === "streamPending" || name === "clock") continue;
    (store as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      if (closed) throw new StoreUnavailableError(`${name}: the embedded store ${location} is closed`);
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (err) {
        throw storeFault(err, name);
      }
    };
  }
  return store;
}
