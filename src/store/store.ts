// store.ts: the Store interface every backend implements (PostgreSQL, embedded SQLite) and the
// row shapes that cross it. Times are epoch milliseconds passed in by the caller; no clock here.

/** A job as the producer asked for it, validated and defaulted, before it has an id. */
export interface NewJob {
  type: string;
  /** The payload already serialised as JSON text (stored and delivered verbatim). */
  payload: string;
  priority: number;
  maxAttempts: number;
  /** When the job may first run (ms). */
  runAt: number;
  /** Per-attempt timeout (ms); null = the type's default. */
  timeoutMs: number | null;
  /**
   * At most one job in the system holds a key: a job submitted with a key another job holds is
   * not inserted, and its submit answers with that job's id. The key is released when its job
   * leaves the system for good (completed and not kept, cancelled, or deleted).
   */
  idempotencyKey?: string;
  /**
   * Start at once: the job is inserted straight into inflight as its first attempt (attempts 1,
   * leased to `owner` until `until`), in the same transaction as the rest of the insert. Submit and
   * claim then share one commit; a crash leaves the row leased, and the reaper hands it back.
   */
  lease?: { owner: string; until: number };
}

/** One submitted job's fate: its new id, or (duplicate) the id of the job already holding its key. */
export interface InsertResult {
  id: number;
  duplicate: boolean;
}

/** What the scheduler needs to place a pending job in its heaps: no payload. */
export interface PendingEntry {
  id: number;
  /** The job type (the scheduler keeps one ready heap per type, for per-type concurrency). */
  type: string;
  priority: number;
  runAt: number;
  createdAt: number;
}

/** The claim a running attempt belongs to: every move out of inflight names it (fencing). */
export interface ClaimRef {
  id: number;
  attempt: number;
}

/** A job handed to a worker by a successful claim. `attempts` already counts this attempt. */
export interface ClaimedJob {
  id: number;
  type: string;
  payload: string;
  priority: number;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number | null;
  runAt: number;
  createdAt: number;
  lastError: string | null;
}

/** A finished attempt; `result` (a short summary, e.g. a command's stdout) is kept with a completed record. */
export interface CompleteMove extends ClaimRef {
  result?: string | null;
}

export interface RetryMove extends ClaimRef {
  runAt: number;
  error: string;
}

export interface BuryMove extends ClaimRef {
  error: string;
}

export type JobState = "pending" | "scheduled" | "inflight" | "dead" | "completed";

/** A job as `GET /jobs/:id` shows it. */
export interface JobView {
  id: number;
  type: string;
  state: JobState;
  priority: number;
  attempts: number;
  maxAttempts: number;
  runAt: number;
  createdAt: number;
  lastError: string | null;
  payload: string;
  owner: string | null;
  leaseUntil: number | null;
  failedAt: number | null;
  /** Completed records only (kept with --keep-completed; they have no payload: "null"). */
  finishedAt?: number;
  result?: string | null;
}

/** claimNext takes at most `room` jobs of `type` (a type at its concurrency limit has room 0). */
export interface TypeCap {
  type: string;
  room: number;
}

/** Which dead jobs a listing shows: ids above `afterId` (keyset pagination), optionally one type. */
export interface DeadQuery {
  type?: string;
  afterId: number;
  limit: number;
  /**
   * A budget of payload bytes (UTF-8): the listing stops after the row whose payload takes the
   * total past it. Every row returned starts within the budget (the first always does), so the
   * caller holds at most maxBytes plus one payload, and a last row past the budget says more follow.
   */
  maxBytes?: number;
}

/** Jobs of one type in each state (scheduled: pending but not yet due). */
export interface TypeCounts {
  type: string;
  pending: number;
  scheduled: number;
  inflight: number;
  dead: number;
  /** Completed records still kept (--keep-completed). */
  completed: number;
}

/** One grouped count (a table and a type), as both stores query them for stats(). */
export interface StatsRow { state: "pending" | "inflight" | "dead" | "completed"; type: string; n: number; later: number; oldest: number | null }

/** Grouped counts (one row per table and type) folded into one entry per type. */
export function statsFromRows(rows: StatsRow[]): StoreStats {
  const byType = new Map<string, TypeCounts>();
  let oldestDueAt: number | null = null;
  for (const r of rows) {
    let t = byType.get(r.type);
    if (!t) byType.set(r.type, (t = { type: r.type, pending: 0, scheduled: 0, inflight: 0, dead: 0, completed: 0 }));
    if (r.state === "pending") {
      t.pending += r.n;
      t.scheduled += r.later;
      if (r.oldest !== null && (oldestDueAt === null || r.oldest < oldestDueAt)) oldestDueAt = r.oldest;
    } else t[r.state] += r.n;
  }
  return { types: [...byType.values()].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)), oldestDueAt };
}

export interface StoreStats {
  /** Every type with at least one job, by name. */
  types: TypeCounts[];
  /** The earliest run time among due pending jobs (how long the oldest ready job has waited), or null. */
  oldestDueAt: number | null;
}

export interface StoreCounts {
  pending: number;
  inflight: number;
  dead: number;
}

export interface Store {
  /** "postgres" | "sqlite", and where it lives (never with a password). */
  readonly kind: string;
  readonly location: string;
  /**
   * true when calls run synchronously on the event loop (embedded SQLite): callers should
   * gather a whole event-loop turn of work into one call instead of relying on overlap.
   */
  readonly blocking: boolean;
  /**
   * Now, in epoch ms, as the store's database sees it: on PostgreSQL this process's clock corrected
   * by its measured offset from the server's (every node then computes due times and leases on one
   * clock, whatever its own says); on the embedded store the local clock.
   */
  readonly clock: () => number;
  /** Apply numbered migrations; safe when several processes start at once. */
  migrate(): Promise<void>;
  /**
   * Insert jobs in one transaction; returns their ids in input order (for a job whose
   * idempotencyKey is taken, the id of the job holding it).
   */
  insert(jobs: NewJob[], now: number): Promise<number[]>;
  /**
   * insert() that also says which jobs were duplicates. Atomic under concurrent submits of one
   * key; within one call a key's first job wins and later ones map to it. Jobs without a key
   * always insert, with increasing ids in input order.
   */
  insertKeyed(jobs: NewJob[], now: number): Promise<InsertResult[]>;
  /**
   * Move the given pending ids to inflight in one transaction (attempts + 1, lease, owner).
   * Ids not returned were claimed elsewhere, cancelled or are not due: the caller drops them.
   */
  claim(ids: number[], owner: string, now: number, leaseMs: number): Promise<ClaimedJob[]>;
  /**
   * Fenced delete of finished attempts; result[i] says whether refs[i] took effect. With `keep`, each
   * job leaves a completed record (finished at keep.finishedAt, with its result) that keeps its
   * idempotency key until it expires at keep.expiresAt and is pruned; without, the key is released.
   */
  complete(refs: CompleteMove[], keep?: { finishedAt: number; expiresAt: number }): Promise<boolean[]>;
  /**
   * Delete up to `limit` completed records expired by `now` (soonest first) and release their keys;
   * returns how many. Records written before expiries existed expire `legacyKeepMs` after they finished.
   */
  pruneCompleted(now: number, limit: number, legacyKeepMs: number): Promise<number>;
  /** Fenced move inflight → pending with a new run_at and the error. */
  retry(moves: RetryMove[]): Promise<boolean[]>;
  /**
   * Fenced removal of cancelled attempts (inflight rows): like complete, but never kept as a
   * completed record.
   */
  completeCancelled(refs: ClaimRef[]): Promise<boolean[]>;
  /** Delete pending (or scheduled) jobs in one transaction; result[i] says whether ids[i] was pending. */
  cancelPending(ids: number[]): Promise<boolean[]>;
  /** Fenced move inflight → dead with the error. */
  bury(moves: BuryMove[], now: number): Promise<boolean[]>;
  /** Fenced lease extension for running attempts owned by `owner`. */
  extendLeases(refs: ClaimRef[], owner: string, leaseUntil: number): Promise<boolean[]>;
  /**
   * Fenced hand-back of attempts this process aborted itself (shutdown): inflight → pending
   * at once, the interrupted attempt not counted.
   */
  release(refs: ClaimRef[], owner: string, now: number): Promise<PendingEntry[]>;
  /**
   * Move up to `limit` inflight rows whose lease ended before `now` back to pending (attempts
   * kept; rows on their final attempt go to dead instead). Returns the rows now pending.
   */
  reapExpired(now: number, limit: number): Promise<PendingEntry[]>;
  /**
   * Hand back every inflight row of `owner` but those in `keep` (the attempts this process is running)
   * to pending at once, the attempt not counted, due at their old run time: rows a claim or leased
   * insert wrote for this process whose answer never came, so none of their attempts ran.
   */
  releaseStrays(owner: string, keep: number[], now: number): Promise<PendingEntry[]>;
  /**
   * Take `id` for this process, exclusively, until close(): throws NodeIdInUseError while another
   * live process holds it. PostgreSQL holds a session advisory lock on a connection of its own, taken
   * again by heartbeatNode() if that connection was replaced (and NodeIdInUseError if someone else
   * took it meanwhile); the embedded store's file lock already makes its process the only one.
   */
  holdNodeId(id: string): Promise<void>;
  /** Start-up: the same hand-back for every inflight row of `owner` (this node's previous run). */
  recoverOwner(owner: string, now: number): Promise<PendingEntry[]>;
  /**
   * Claim up to `limit` due pending rows this process's heap may not hold (another node's backlog;
   * a commit whose reply was lost): the most urgent by aging key (run_at − priority × agingMs, then
   * id) among those no one else is claiming. Same effect per row as claim().
   */
  claimNext(limit: number, owner: string, now: number, leaseMs: number, agingMs: number, caps?: TypeCap[]): Promise<ClaimedJob[]>;
  /**
   * The `limit` most urgent due pending rows by aging key (run_at − priority × agingMs, then id),
   * most urgent first, without claiming them: a node compares them with its own heap's top.
   */
  peekUrgent(now: number, agingMs: number, limit: number): Promise<PendingEntry[]>;
  /** Tell other processes on this database that jobs arrived (a coalesced hint; no-op when alone). */
  announce(now: number): Promise<void>;
  /** Hear other processes' announcements; resolves with a function that stops listening. */
  listen(onHint: () => void): Promise<() => Promise<void>>;
  /**
   * Node liveness (and, on PostgreSQL, a check that this process still holds its node id): upsert this node's heartbeat (started_at kept from its first call) and return
   * how many nodes have beaten since `aliveSince`, this one included.
   */
  heartbeatNode(id: string, now: number, aliveSince: number): Promise<number>;
  /** A clean shutdown takes the node off the list. */
  removeNode(id: string): Promise<void>;
  /** Stream every pending row's sort fields, in batches, for rebuilding the heaps. */
  streamPending(batchSize: number): AsyncIterable<PendingEntry[]>;
  get(id: number, now: number): Promise<JobView | null>;
  /** Dead jobs in id order (state "dead", failedAt set). */
  listDead(query: DeadQuery): Promise<JobView[]>;
  /**
   * Move dead jobs back to pending in one transaction: attempts reset to 0, run_at = now, last
   * error kept. Ids that are not dead are skipped. Returns the rows now pending.
   */
  retryDead(ids: number[], now: number): Promise<PendingEntry[]>;
  /** The same for up to `limit` dead jobs of `type` that failed at or before `now`, lowest ids first. */
  retryDeadOfType(type: string, now: number, limit: number): Promise<PendingEntry[]>;
  /** Delete dead jobs in one transaction; result[i] says whether ids[i] was dead. */
  deleteDead(ids: number[]): Promise<boolean[]>;
  /** Delete up to `limit` dead jobs of `type` (lowest ids first) in one transaction; returns how many. */
  deleteDeadOfType(type: string, limit: number): Promise<number>;
  counts(): Promise<StoreCounts>;
  /** Counts by type and state, one grouped query per table; `now` splits pending from scheduled. */
  stats(now: number): Promise<StoreStats>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
