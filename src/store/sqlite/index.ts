// index.ts: the embedded SQLite Store (bun:sqlite) for one process. Every state move is one
// immediate transaction, every move out of inflight is fenced by (id, attempts), and the database
// file is locked to this process while open. No scheduling decisions here.
import type { BuryMove, ClaimRef, ClaimedJob, CompleteMove, InsertResult, JobState, JobView, NewJob, PendingEntry, RetryMove, StatsRow, StoreCounts, TypeCap } from "../rows.ts";
import { statsFromRows } from "../rows.ts";
import type { Store, StoreTestHooks } from "../store.ts";
import { openConnection, type Connection, type GuardedStore, type Part, type Prepared, type SqliteStoreOptions } from "./connection.ts";

// ==== tables ====================================================================================
// tables: the job tables as every part of the embedded store sees them: the column lists that read
// rows straight into the shapes of rows.ts, and the steps that finish a move in several parts. No
// transactions and no store methods here.
// Columns aliased to the shapes that cross the Store interface, so rows need no mapping.
const JOB_COLS = `id, type, payload, priority, attempts, max_attempts AS maxAttempts, timeout_ms AS timeoutMs,
  run_at AS runAt, created_at AS createdAt, last_error AS lastError`;
const ENTRY_COLS = "id, type, priority, run_at AS runAt, created_at AS createdAt";
/** The columns a move copies from one job table to another. */
const COPY_COLS = "id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, last_error";

/** The steps several parts end their moves with. */
interface TableSteps {
  /** After a job left the system for good (changes > 0), release its idempotency key; says whether it left. */
  removed(changes: number, id: number): boolean;
  /** Delete an inflight row once a move has copied it elsewhere. */
  deleteInflight: Prepared<never, [id: number]>;
}

function createTableSteps(conn: Connection): TableSteps {
  const releaseKey = conn.prepare<never, [jobId: number]>("DELETE FROM idempotency_keys WHERE job_id = ?");
  return {
    removed(changes, id) {
      if (changes === 0) return false;
      releaseKey().run(id);
      return true;
    },
    deleteInflight: conn.prepare("DELETE FROM inflight_jobs WHERE id = ?"),
  };
}

/**
 * A move, row by row: `copy` writes a row's copy into its new table and returns it (null when the row
 * was not there or its fence did not hold), then `remove` deletes the original. SQLite cannot insert
 * what a DELETE returns, so every move that answers rows is this pair. Returns the copies, in order.
 */
function moveEach<I, T extends { id: number }>(items: Iterable<I>, copy: (item: I) => T | null, remove: Prepared<never, [id: number]>): T[] {
  const moved: T[] = [];
  for (const item of items) {
    const row = copy(item);
    if (!row) continue;
    remove().run(row.id);
    moved.push(row);
  }
  return moved;
}

// ==== submit ====================================================================================
// submit: the embedded store's submits: add() (idempotency keys, ids handed out in input order) and
// the tests' insert(), each one immediate transaction. Moves of jobs that already exist live elsewhere.
function createSubmit({ conn }: { conn: Connection }): Part<"add" | "insert"> {
  const { db, op, prepare } = conn;

  // Ids come from one counter row, so a batch gets consecutive ids in input order.
  const bumpIds = prepare<{ last_id: number }, [count: number]>("UPDATE job_ids SET last_id = last_id + ? RETURNING last_id");
  const insertPending = prepare<never, [id: number, type: string, payload: string, priority: number, maxAttempts: number,
    timeoutMs: number | null, runAt: number, createdAt: number]>(`
    INSERT INTO pending_jobs (id, type, payload, priority, max_attempts, timeout_ms, run_at, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
  // A job that starts at once: its first attempt, leased in the insert's own transaction.
  const insertStarted = prepare<never, [id: number, type: string, payload: string, priority: number, maxAttempts: number,
    timeoutMs: number | null, runAt: number, createdAt: number, pickedAt: number, leaseUntil: number, owner: string]>(`
    INSERT INTO inflight_jobs (id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
                               picked_at, lease_until, owner)
    VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)`);

  /** The last of `count` fresh ids. */
  const takeIds = (count: number) => bumpIds().get(count)!.last_id;

  /** One job's row: pending, or (with a lease) inflight as its first attempt. */
  const insertRow = (id: number, j: NewJob, now: number) => {
    if (j.lease === undefined) insertPending().run(id, j.type, j.payload, j.priority, j.maxAttempts, j.timeoutMs, j.runAt, now);
    else insertStarted().run(id, j.type, j.payload, j.priority, j.maxAttempts, j.timeoutMs, j.runAt, now, now, j.lease.until, j.lease.owner);
  };

  // ---- add: jobs with or without idempotency keys ----
  const keyHolder = prepare<{ job_id: number }, [key: string]>("SELECT job_id FROM idempotency_keys WHERE key = ?");
  const takeKey = prepare<never, [key: string, jobId: number, createdAt: number]>(
    "INSERT INTO idempotency_keys (key, job_id, created_at) VALUES (?, ?, ?)");
  const addTx = db.transaction((jobs: NewJob[], now: number) => {
    // Who holds each key: a job from before this call, or the first of this call to name it.
    const holders = new Map<string, InsertResult>();
    const fresh: number[] = [];
    jobs.forEach((j, i) => {
      const key = j.idempotencyKey;
      if (key === undefined) fresh.push(i);
      else if (!holders.has(key)) {
        const held = keyHolder().get(key);
        if (held) holders.set(key, { id: held.job_id, duplicate: true });
        else {
          holders.set(key, { id: -1, duplicate: false });
          fresh.push(i);
        }
      }
    });
    const last = fresh.length > 0 ? takeIds(fresh.length) : 0;
    const idOf = new Map(fresh.map((i, n) => [i, last - fresh.length + 1 + n]));
    for (const i of fresh) {
      const j = jobs[i]!;
      const id = idOf.get(i)!;
      insertRow(id, j, now);
      if (j.idempotencyKey !== undefined) {
        takeKey().run(j.idempotencyKey, id, now);
        holders.set(j.idempotencyKey, { id, duplicate: false });
      }
    }
    return jobs.map((j, i): InsertResult => {
      if (j.idempotencyKey === undefined) return { id: idOf.get(i)!, duplicate: false };
      const h = holders.get(j.idempotencyKey)!;
      return idOf.has(i) ? h : { id: h.id, duplicate: true };
    });
  });
  const add = op("add", (jobs, now) => (jobs.length === 0 ? [] : addTx.immediate(jobs, now)));

  // ---- insert (tests and benchmarks): jobs without keys, answered by their ids ----
  const insertTx = db.transaction((jobs: NewJob[], now: number) => {
    const first = takeIds(jobs.length) - jobs.length + 1;
    return jobs.map((j, i) => {
      insertRow(first + i, j, now);
      return first + i;
    });
  });
  const insert = op("insert", (jobs, now) => {
    if (jobs.length === 0) return [];
    if (jobs.some((j) => j.idempotencyKey !== undefined)) return addTx.immediate(jobs, now).map((r) => r.id);
    return insertTx.immediate(jobs, now);
  });

  return { add, insert };
}

// ==== claim ====================================================================================
// claim: the embedded store's claims (pending → inflight, attempts + 1, leased) by id and by aging
// key, and the look at the most urgent due rows that decides them. Settling a claim lives elsewhere.
/** Priorities run from 0 to this; the most urgent due rows are found with one probe per priority. */
const MAX_PRIORITY = 100;

/** A pending row's aging key (store.ts): the smaller, the more urgent; equal keys go by the lower id. */
const agingKey = (e: PendingEntry, agingMs: number) => e.runAt - e.priority * agingMs;

function createClaims({ conn }: { conn: Connection }): Part<"claim" | "claimNext" | "peekUrgent"> {
  const { db, op, prepare } = conn;

  // ---- claim: the given ids, each if it is still pending and due ----
  const claimDue = prepare<ClaimedJob, [now: number, leaseUntil: number, owner: string, id: number, now: number]>(`
    INSERT INTO inflight_jobs (${COPY_COLS}, picked_at, lease_until, owner)
    SELECT id, type, payload, priority, attempts + 1, max_attempts, timeout_ms, run_at, created_at, last_error, ?, ?, ?
    FROM pending_jobs WHERE id = ? AND run_at <= ?
    RETURNING ${JOB_COLS}`);
  const deletePending = prepare<never, [id: number]>("DELETE FROM pending_jobs WHERE id = ?");
  const claimTx = db.transaction((ids: number[], owner: string, now: number, leaseMs: number) =>
    moveEach(ids, (id) => claimDue().get(now, now + leaseMs, owner, id, now), deletePending));
  const claim = op("claim", (ids, owner, now, leaseMs) => (ids.length === 0 ? [] : claimTx.immediate(ids, owner, now, leaseMs)));

  // ---- the most urgent due rows (peekUrgent, claimNext) ----
  // The oldest due rows of one priority, leaving out some types (a JSON array) (pending_jobs_priority_run_at_idx).
  const dueOfPriority = prepare<PendingEntry, [priority: number, now: number, skipTypes: string, limit: number]>(
    `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE priority = ? AND run_at <= ?
       AND type NOT IN (SELECT value FROM json_each(?)) ORDER BY run_at, id LIMIT ?`);
  const dueOfPriorityType = prepare<PendingEntry, [priority: number, type: string, now: number, limit: number]>(
    `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE priority = ? AND type = ? AND run_at <= ? ORDER BY run_at, id LIMIT ?`);
  /**
   * The most urgent due pending rows by aging key, most urgent first: the `limit` oldest of each
   * priority hold the `limit` most urgent overall. Capped types are left out of those probes and get
   * their own, at most `room` rows per priority, so a capped type's backlog cannot crowd the others
   * out (room 0: none).
   */
  const urgent = (now: number, agingMs: number, limit: number, caps: TypeCap[] = []) => {
    const skip = JSON.stringify(caps.map((c) => c.type));
    const rows: PendingEntry[] = [];
    for (let priority = 0; priority <= MAX_PRIORITY; priority++) {
      rows.push(...dueOfPriority().all(priority, now, skip, limit));
      for (const c of caps) if (c.room > 0) rows.push(...dueOfPriorityType().all(priority, c.type, now, Math.min(c.room, limit)));
    }
    return rows.sort((a, b) => agingKey(a, agingMs) - agingKey(b, agingMs) || a.id - b.id);
  };
  const peekUrgent = op("peekUrgent", (now, agingMs, limit) => (limit <= 0 ? [] : urgent(now, agingMs, limit).slice(0, limit)));

  // ---- claimNext: the most urgent due rows, whoever submitted them ----
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
  const claimNext = op("claimNext", (limit, owner, now, leaseMs, agingMs, caps = []) =>
    (limit <= 0 ? [] : claimNextTx.immediate(limit, owner, now, leaseMs, agingMs, caps)));

  return { claim, claimNext, peekUrgent };
}

// ==== settle ====================================================================================
// settle: the embedded store's verdicts on running attempts (complete, retry, bury, cancelled) and
// their lease extensions, each fenced by (id, attempts) and answering whether it took effect. Hand-backs
// without a verdict live in recovery.ts.
function createSettle({ conn, tables }: { conn: Connection; tables: TableSteps }): Part<
  "complete" | "completeCancelled" | "retry" | "bury" | "extendLeases"
> {
  const { db, op, prepare } = conn;
  const { removed, deleteInflight } = tables;

  /** After a fenced INSERT … SELECT copied a row out of inflight (changes > 0), remove the original. */
  const movedOut = (changes: number, id: number) => {
    if (changes === 0) return false;
    deleteInflight().run(id);
    return true;
  };

  // ---- complete, completeCancelled: the attempt's row leaves the system, and with it its key ----
  const completeFenced = prepare<never, [id: number, attempt: number]>("DELETE FROM inflight_jobs WHERE id = ? AND attempts = ?");
  const removeTx = db.transaction((refs: ClaimRef[]) => refs.map((r) => removed(completeFenced().run(r.id, r.attempt).changes, r.id)));
  // Kept (--keep-completed): a completed record replaces the row, and the idempotency key stays until it is pruned.
  const keepCompleted = prepare<never, [finishedAt: number, expiresAt: number, result: string | null, id: number, attempt: number]>(`
    INSERT INTO completed_jobs (id, type, priority, attempts, max_attempts, run_at, created_at, finished_at, expires_at, result)
    SELECT id, type, priority, attempts, max_attempts, run_at, created_at, ?, ?, ?
    FROM inflight_jobs WHERE id = ? AND attempts = ?`);
  const completeKeptTx = db.transaction((refs: CompleteMove[], finishedAt: number, expiresAt: number) =>
    refs.map((r) => movedOut(keepCompleted().run(finishedAt, expiresAt, r.result ?? null, r.id, r.attempt).changes, r.id)));
  const complete = op("complete", (refs, keep) => {
    if (refs.length === 0) return [];
    return keep === undefined ? removeTx.immediate(refs) : completeKeptTx.immediate(refs, keep.finishedAt, keep.expiresAt);
  });
  // A cancelled attempt is never kept as a completed record.
  const completeCancelled = op("completeCancelled", (refs) => (refs.length === 0 ? [] : removeTx.immediate(refs)));

  // ---- retry: back to pending with a new run time and the error ----
  const retryFenced = prepare<never, [runAt: number, error: string, id: number, attempt: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, ?, created_at, ?
    FROM inflight_jobs WHERE id = ? AND attempts = ?`);
  const retryTx = db.transaction((moves: RetryMove[]) =>
    moves.map((m) => movedOut(retryFenced().run(m.runAt, m.error, m.id, m.attempt).changes, m.id)));
  const retry = op("retry", (moves) => (moves.length === 0 ? [] : retryTx.immediate(moves)));

  // ---- bury: to dead with the error ----
  const buryFenced = prepare<never, [error: string, failedAt: number, id: number, attempt: number]>(`
    INSERT INTO dead_jobs (${COPY_COLS}, failed_at)
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at, ?, ?
    FROM inflight_jobs WHERE id = ? AND attempts = ?`);
  const buryTx = db.transaction((moves: BuryMove[], now: number) =>
    moves.map((m) => movedOut(buryFenced().run(m.error, now, m.id, m.attempt).changes, m.id)));
  const bury = op("bury", (moves, now) => (moves.length === 0 ? [] : buryTx.immediate(moves, now)));

  // ---- extendLeases: running attempts of this owner keep their rows ----
  const extendFenced = prepare<never, [leaseUntil: number, id: number, attempt: number, owner: string]>(
    "UPDATE inflight_jobs SET lease_until = ? WHERE id = ? AND attempts = ? AND owner = ?");
  const extendTx = db.transaction((refs: ClaimRef[], owner: string, leaseUntil: number) =>
    refs.map((r) => extendFenced().run(leaseUntil, r.id, r.attempt, owner).changes > 0));
  const extendLeases = op("extendLeases", (refs, owner, leaseUntil) => (refs.length === 0 ? [] : extendTx.immediate(refs, owner, leaseUntil)));

  return { complete, completeCancelled, retry, bury, extendLeases };
}

// ==== recovery ====================================================================================
// recovery: the embedded store's hand-backs of inflight rows without a verdict (this node's aborted
// attempts and stray leases, expired leases, a restarted node's rows), the start-up stream of pending
// rows, and the pruning of expired completed records. Verdicts on attempts live in settle.ts.
type RecoveryPart = Part<"release" | "releaseStrays" | "reapExpired" | "recoverOwner" | "pruneCompleted"> & {
  streamPending(batchSize: number): AsyncIterable<PendingEntry[]>;
};

function createRecovery({ conn, tables }: { conn: Connection; tables: TableSteps }): RecoveryPart {
  const { db, op, prepare } = conn;
  const { removed, deleteInflight } = tables;
  const ownerIds = prepare<{ id: number }, [owner: string]>("SELECT id FROM inflight_jobs WHERE owner = ? ORDER BY id");

  // ---- release: attempts this process aborted itself (shutdown), fenced; the attempt is not counted ----
  const releaseFenced = prepare<PendingEntry, [now: number, id: number, attempt: number, owner: string]>(`
    INSERT INTO pending_jobs (${COPY_COLS})
    SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, ?, created_at, last_error
    FROM inflight_jobs WHERE id = ? AND attempts = ? AND owner = ?
    RETURNING ${ENTRY_COLS}`);
  const releaseTx = db.transaction((refs: ClaimRef[], owner: string, now: number) =>
    moveEach(refs, (r) => releaseFenced().get(now, r.id, r.attempt, owner), deleteInflight));
  const release = op("release", (refs, owner, now) => (refs.length === 0 ? [] : releaseTx.immediate(refs, owner, now)));

  // ---- releaseStrays: rows leased by a claim or insert whose answer was lost: back as they were, no attempt counted ----
  const releaseStray = prepare<PendingEntry, [id: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS})
    SELECT id, type, payload, priority, attempts - 1, max_attempts, timeout_ms, run_at, created_at, last_error
    FROM inflight_jobs WHERE id = ?
    RETURNING ${ENTRY_COLS}`);
  const releaseStraysTx = db.transaction((owner: string, keep: number[]) => {
    const kept = new Set(keep);
    const strays = ownerIds().all(owner).map((r) => r.id).filter((id) => !kept.has(id));
    return moveEach(strays, (id) => releaseStray().get(id), deleteInflight);
  });
  const releaseStrays = op("releaseStrays", (owner, keep) => releaseStraysTx.immediate(owner, keep));

  // ---- reapExpired, recoverOwner: hand-backs that keep the attempt counted ----
  // A hand-back without a verdict (lease expired, restart) keeps the attempt counted, so a job that
  // kills its process on every run is dead-lettered after max_attempts runs, not looped.
  const handBackDead = prepare<never, [error: string, failedAt: number, id: number]>(`
    INSERT INTO dead_jobs (${COPY_COLS}, failed_at)
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, run_at, created_at,
           ? || ' on the final attempt', ?
    FROM inflight_jobs WHERE id = ? AND attempts >= max_attempts`);
  const handBackPending = prepare<PendingEntry, [runAt: number | null, error: string, id: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS})
    SELECT id, type, payload, priority, attempts, max_attempts, timeout_ms, coalesce(?, run_at), created_at,
           coalesce(last_error, ?)
    FROM inflight_jobs WHERE id = ? AND attempts < max_attempts
    RETURNING ${ENTRY_COLS}`);
  /** Hand inflight rows back without a verdict: final attempts to dead, the rest to pending. */
  const handBack = (ids: number[], runAt: number | null, error: string, now: number) => {
    const back: PendingEntry[] = [];
    for (const id of ids) {
      const entry = handBackPending().get(runAt, error, id);
      if (entry) back.push(entry);
      else handBackDead().run(error, now, id);
      deleteInflight().run(id);
    }
    return back;
  };
  const expiredIds = prepare<{ id: number }, [now: number, limit: number]>(
    "SELECT id FROM inflight_jobs WHERE lease_until < ? ORDER BY lease_until LIMIT ?");
  const reapTx = db.transaction((now: number, limit: number) =>
    handBack(expiredIds().all(now, limit).map((r) => r.id), now, "lease expired", now));
  const reapExpired = op("reapExpired", (now, limit) => reapTx.immediate(now, limit));
  const recoverTx = db.transaction((owner: string, now: number) =>
    handBack(ownerIds().all(owner).map((r) => r.id), null, "interrupted by a restart", now));
  const recoverOwner = op("recoverOwner", (owner, now) => recoverTx.immediate(owner, now));

  // ---- streamPending: every pending row's sort fields, for the heaps at start-up ----
  const pendingPage = prepare<PendingEntry, [afterId: number, limit: number]>(
    `SELECT ${ENTRY_COLS} FROM pending_jobs WHERE id > ? ORDER BY id LIMIT ?`);
  // Not built through op(): it runs at start-up, before anything can close the store.
  async function* streamPending(batchSize: number) {
    // Keyset pagination: each page is a short read, so writes can run between batches.
    let after = 0;
    for (;;) {
      const page = pendingPage().all(after, batchSize);
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1]!.id;
      if (page.length < batchSize) return;
    }
  }

  // ---- pruneCompleted: completed records past their expiry, and their keys ----
  const expiredCompleted = prepare<{ id: number }, [now: number, limit: number]>(
    "SELECT id FROM completed_jobs WHERE expires_at <= ? ORDER BY expires_at LIMIT ?");
  const legacyCompleted = prepare<{ id: number }, [before: number, limit: number]>(
    "SELECT id FROM completed_jobs WHERE expires_at IS NULL AND finished_at <= ? ORDER BY finished_at LIMIT ?");
  const deleteCompleted = prepare<never, [id: number]>("DELETE FROM completed_jobs WHERE id = ?");
  const pruneCompletedTx = db.transaction((now: number, limit: number, legacyKeepMs: number) => {
    const ids = expiredCompleted().all(now, limit).map((r) => r.id);
    if (ids.length < limit) ids.push(...legacyCompleted().all(now - legacyKeepMs, limit - ids.length).map((r) => r.id));
    for (const id of ids) removed(deleteCompleted().run(id).changes, id);
    return ids.length;
  });
  const pruneCompleted = op("pruneCompleted", (now, limit, legacyKeepMs) => pruneCompletedTx.immediate(now, limit, legacyKeepMs));

  return { release, releaseStrays, reapExpired, recoverOwner, streamPending, pruneCompleted };
}

// ==== admin ====================================================================================
// admin: the embedded store's operator reads and actions (a job, stats, cancelling pending jobs,
// dead letters) and the tests' table counts. Nothing here touches a running attempt.
type ViewRow = Omit<JobView, "state" | "finishedAt" | "result"> & {
  state: "pending" | "inflight" | "dead" | "completed"; finishedAt: number | null; result: string | null;
};

function createAdmin({ conn, tables }: { conn: Connection; tables: TableSteps }): Part<
  "get" | "stats" | "counts" | "cancelPending" | "listDead" | "retryDead" | "retryDeadOfType" | "deleteDead" | "deleteDeadOfType"
> {
  const { db, op, prepare } = conn;
  const { removed } = tables;

  // ---- get: one job, wherever it is ----
  const view = prepare<ViewRow, [id: number, id: number, id: number, id: number]>(`
    SELECT 'pending' AS state, ${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, NULL AS failedAt, NULL AS finishedAt, NULL AS result
      FROM pending_jobs WHERE id = ?
    UNION ALL
    SELECT 'inflight', ${JOB_COLS}, owner, lease_until, NULL, NULL, NULL FROM inflight_jobs WHERE id = ?
    UNION ALL
    SELECT 'dead', ${JOB_COLS}, NULL, NULL, failed_at, NULL, NULL FROM dead_jobs WHERE id = ?
    UNION ALL
    SELECT 'completed', id, type, 'null', priority, attempts, max_attempts, NULL, run_at, created_at, NULL,
           NULL, NULL, NULL, finished_at, result
      FROM completed_jobs WHERE id = ?`);
  const get = op("get", (id, now) => {
    const r = view().get(id, id, id, id);
    if (!r) return null;
    const state: JobState = r.state === "pending" && r.runAt > now ? "scheduled" : r.state;
    const { finishedAt, result, ...rest } = r;
    return { ...rest, state, ...(finishedAt !== null && { finishedAt, result }) };
  });

  // ---- stats, counts: one grouped query per table ----
  const grouped = prepare<StatsRow, [now: number, now: number, now: number]>(`
    SELECT 'pending' AS state, type, sum(run_at <= ?) AS n, sum(run_at > ?) AS later,
           min(CASE WHEN run_at <= ? THEN run_at END) AS oldest
      FROM pending_jobs GROUP BY type
    UNION ALL SELECT 'inflight', type, count(*), 0, NULL FROM inflight_jobs GROUP BY type
    UNION ALL SELECT 'dead', type, count(*), 0, NULL FROM dead_jobs GROUP BY type
    UNION ALL SELECT 'completed', type, count(*), 0, NULL FROM completed_jobs GROUP BY type`);
  const stats = op("stats", (now) => statsFromRows(grouped().all(now, now, now)));
  const tableCounts = prepare<StoreCounts, []>(`
    SELECT (SELECT count(*) FROM pending_jobs) AS pending, (SELECT count(*) FROM inflight_jobs) AS inflight,
           (SELECT count(*) FROM dead_jobs) AS dead`);
  const counts = op("counts", () => tableCounts().get() ?? { pending: 0, inflight: 0, dead: 0 });

  // ---- cancelPending ----
  const deletePending = prepare<never, [id: number]>("DELETE FROM pending_jobs WHERE id = ?");
  const cancelPendingTx = db.transaction((ids: number[]) => ids.map((id) => removed(deletePending().run(id).changes, id)));
  const cancelPending = op("cancelPending", (ids) => (ids.length === 0 ? [] : cancelPendingTx.immediate(ids)));

  // ---- listDead: the page first (LIMIT), then a running total of its payload bytes, kept while it starts within the budget ----
  const deadPage = prepare<Omit<JobView, "state" | "finishedAt" | "result">, [afterId: number, type: string | null, type: string | null, limit: number, maxBytes: number | null, maxBytes: number | null]>(`
    SELECT ${JOB_COLS}, NULL AS owner, NULL AS leaseUntil, failed_at AS failedAt FROM (
      SELECT *, sum(bytes) OVER (ORDER BY id) - bytes AS bytes_before FROM (
        SELECT *, length(CAST(payload AS BLOB)) AS bytes FROM dead_jobs
        WHERE id > ? AND (? IS NULL OR type = ?) ORDER BY id LIMIT ?))
    WHERE ? IS NULL OR bytes_before <= ? ORDER BY id`);
  const listDead = op("listDead", (query) => {
    const type = query.type ?? null;
    const maxBytes = query.maxBytes ?? null;
    return deadPage().all(query.afterId, type, type, query.limit, maxBytes, maxBytes).map((r): JobView => ({ ...r, state: "dead" }));
  });

  // ---- retryDead, retryDeadOfType: dead → pending, attempts 0, due at `now` ----
  const reviveDead = prepare<PendingEntry, [runAt: number, id: number]>(`
    INSERT INTO pending_jobs (${COPY_COLS})
    SELECT id, type, payload, priority, 0, max_attempts, timeout_ms, ?, created_at, last_error
    FROM dead_jobs WHERE id = ?
    RETURNING ${ENTRY_COLS}`);
  const deleteDeadRow = prepare<never, [id: number]>("DELETE FROM dead_jobs WHERE id = ?");
  const revive = (ids: number[], now: number) => moveEach(ids, (id) => reviveDead().get(now, id), deleteDeadRow);
  const retryDeadTx = db.transaction((ids: number[], now: number) => revive(ids, now));
  const retryDead = op("retryDead", (ids, now) => (ids.length === 0 ? [] : retryDeadTx.immediate(ids, now)));
  const deadIdsOfType = prepare<{ id: number }, [type: string, failedBy: number, limit: number]>(
    "SELECT id FROM dead_jobs WHERE type = ? AND failed_at <= ? ORDER BY id LIMIT ?");
  const retryDeadOfTypeTx = db.transaction((type: string, now: number, limit: number) =>
    revive(deadIdsOfType().all(type, now, limit).map((r) => r.id), now));
  const retryDeadOfType = op("retryDeadOfType", (type, now, limit) => retryDeadOfTypeTx.immediate(type, now, limit));

  // ---- deleteDead, deleteDeadOfType: gone for good, and their keys with them ----
  const deleteDeadTx = db.transaction((ids: number[]) => ids.map((id) => removed(deleteDeadRow().run(id).changes, id)));
  const deleteDead = op("deleteDead", (ids) => (ids.length === 0 ? [] : deleteDeadTx.immediate(ids)));
  const deadIdsOfTypeAll = prepare<{ id: number }, [type: string, limit: number]>(
    "SELECT id FROM dead_jobs WHERE type = ? ORDER BY id LIMIT ?");
  const deleteDeadOfTypeTx = db.transaction((type: string, limit: number) => {
    const ids = deadIdsOfTypeAll().all(type, limit).map((r) => r.id);
    for (const id of ids) removed(deleteDeadRow().run(id).changes, id);
    return ids.length;
  });
  const deleteDeadOfType = op("deleteDeadOfType", (type, limit) => deleteDeadOfTypeTx.immediate(type, limit));

  return { get, stats, counts, cancelPending, listDead, retryDead, retryDeadOfType, deleteDead, deleteDeadOfType };
}

// ==== cluster ====================================================================================
// cluster: the embedded store's part in node coordination. One process per file: taking the node id
// and hints are no-ops; the heartbeat rows are kept as on PostgreSQL (the jobqueue_nodes gauge).
function createCluster({ conn }: { conn: Connection }): Part<"holdNodeId" | "heartbeatNode" | "removeNode" | "announce" | "listen"> {
  const { op, prepare } = conn;

  const beat = prepare<never, [id: string, startedAt: number, heartbeatAt: number]>(`
    INSERT INTO jobqueue_nodes (id, started_at, heartbeat_at) VALUES (?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`);
  const othersAlive = prepare<{ n: number }, [id: string, aliveSince: number]>(
    "SELECT count(*) AS n FROM jobqueue_nodes WHERE id <> ? AND heartbeat_at >= ?");
  const forget = prepare<never, [id: string]>("DELETE FROM jobqueue_nodes WHERE id = ?");

  return {
    // The file lock (openLocked) already makes this process the only one on the store.
    holdNodeId: op("holdNodeId", () => {}),
    heartbeatNode: op("heartbeatNode", (id, now, aliveSince) => {
      beat().run(id, now, now);
      return 1 + (othersAlive().get(id, aliveSince)?.n ?? 0);
    }),
    removeNode: op("removeNode", (id) => {
      forget().run(id);
    }),
    // One process per file: there is nobody to hint or hear.
    announce: op("announce", () => {}),
    listen: op("listen", () => async () => {}),
  };
}

export { StoreLockedError, type SqliteStoreOptions } from "./connection.ts";

export function createSqliteStore(opts: SqliteStoreOptions): Store & StoreTestHooks {
  const { conn, lifecycle, location } = openConnection(opts);
  const tables = createTableSteps(conn);
  const store: GuardedStore = {
    kind: "sqlite",
    location,
    blocking: true,
    // One process per file: its clock is the only one. Reads no file, so it is not guarded.
    clock: Date.now,
    ...lifecycle,
    ...createSubmit({ conn }),
    ...createClaims({ conn }),
    ...createSettle({ conn, tables }),
    ...createRecovery({ conn, tables }),
    ...createAdmin({ conn, tables }),
    ...createCluster({ conn }),
  };
  return store;
}
