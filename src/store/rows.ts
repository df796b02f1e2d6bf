// rows.ts: the shapes that cross the store's interfaces (jobs in, claimed jobs and views out, the
// moves that settle an attempt) and the one fold of grouped stats rows both backends share. Times
// are epoch milliseconds.

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
   * claim then share one commit; a crash leaves the row leased, and the reaper hands it back. A job
   * of a paused type is inserted pending instead (its result says `held`).
   */
  lease?: { owner: string; until: number };
  /** A W3C traceparent (checked by the caller) to keep with the job and hand to its handler. */
  trace?: string;
  /** The job's flow-control key (a tenant, customer or resource): types may limit and share turns per key. */
  key?: string;
  /** The moment (ms) after which no attempt of the job may start: it is dead-lettered as expired instead. */
  startBy?: number;
}

/** One submitted job's fate: its new id, or (duplicate) the id of the job already holding its key. */
export interface InsertResult {
  id: number;
  duplicate: boolean;
  /** Asked to start at once (NewJob.lease) but its type is paused: inserted pending instead. */
  held?: boolean;
}

/** What the scheduler needs to place a pending job in its heaps: no payload. */
export interface PendingEntry {
  id: number;
  /** The job type (the scheduler keeps one ready heap per type, for per-type concurrency). */
  type: string;
  priority: number;
  runAt: number;
  /** The job's flow-control key, or null (keyed types share turns between keys). */
  key: string | null;
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
  /** The job's flow-control key, or null. */
  key: string | null;
  /** No attempt may start after this moment (ms), or null. */
  startBy: number | null;
  /** Times a target pushed back (429/503 with Retry-After) and the job waited without using an attempt. */
  throttles: number;
  /** The W3C traceparent the job was submitted with, or null (absent where a store row was not read). */
  trace?: string | null;
}

/** Why a job that is not running waits (GET /jobs/:id `waitingFor`). */
export type WaitReason = "scheduled" | "backoff" | "paused" | "rate_limit" | "key_concurrency" | "type_concurrency" | "breaker_open" | "workers_busy" | "awaiting_worker" | "no_handler";

/** Why a claim left a due pending job where it was: flow control holds it for now. */
export type HoldReason = "paused" | "rate_limit" | "key_concurrency";

/** A job a claim did not take although it is still pending and due, and when to ask again. */
export interface HeldJob {
  id: number;
  type: string;
  /** The job's key (see NewJob.key), or null. */
  key: string | null;
  reason: HoldReason;
  /** How long until the store may start it (a rate limit's next token), or null when it cannot tell. */
  retryInMs: number | null;
  /** The hold is its key's (its key's concurrency or rate), not its whole type's: other keys may start. */
  perKey?: true;
}

/**
 * What a claim by id did: the jobs it moved to inflight, those flow control held back, and those it
 * found past their start-by deadline and moved to dead instead.
 */
export interface ClaimResult {
  jobs: ClaimedJob[];
  /** Still pending: not started for now. Ids in none of the lists were taken elsewhere, cancelled, or are not due. */
  held: HeldJob[];
  /** Ids of due jobs past their start-by deadline: now dead, last error "expired", never started. */
  expired: number[];
}

/** The last error of a job dead-lettered because no attempt started by its deadline. */
export const EXPIRED_ERROR = "expired";

/** A pending job moved to dead because its start-by deadline passed before any attempt could start. */
export interface ExpiredJob {
  id: number;
  type: string;
}

/** A finished attempt; `result` (a short summary, e.g. a command's stdout) is kept with a completed record. */
export interface CompleteMove extends ClaimRef {
  result?: string | null;
  /** How long the attempt ran (kept with a completed record, with the node that ran it). */
  runMs?: number;
}

/** How an attempt that did not complete its job ended (its record in GET /jobs/:id attemptHistory). */
export type AttemptOutcome =
  | "failed" | "timeout" | "throttled" | "lease_expired" | "shutdown" | "node_restarted" | "completed";

/** What a move that ends an attempt without completing its job records of it beside the error. */
export interface AttemptEnd {
  outcome: AttemptOutcome;
  /** Epoch ms. */
  endedAt: number;
  /** The webhook's HTTP status, or the command's exit code, when the attempt got that far. */
  status?: number | null;
  exitCode?: number | null;
}

/** One attempt on record: GET /jobs/:id attemptHistory, oldest first. */
export interface AttemptRecord {
  attempt: number;
  node: string | null;
  startedAt: number | null;
  endedAt: number;
  outcome: AttemptOutcome;
  status: number | null;
  exitCode: number | null;
  /** The first ATTEMPT_ERROR_BYTES bytes of the error, or null. */
  error: string | null;
}

/** Attempts on record per job (older ones go as new ones come). */
export const ATTEMPTS_KEPT = 20;
/** Bytes of an attempt's error on record. */
export const ATTEMPT_ERROR_BYTES = 500;

/** An error as an attempt's record keeps it: its first ATTEMPT_ERROR_BYTES bytes of UTF-8, never a broken character. */
export function attemptError(error: string): string {
  if (error.length * 3 <= ATTEMPT_ERROR_BYTES) return error;
  const bytes = Buffer.from(error);
  if (bytes.length <= ATTEMPT_ERROR_BYTES) return error;
  let end = ATTEMPT_ERROR_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back to the start of the character that was cut
  return bytes.subarray(0, end).toString();
}

/** The attempt that completed a job, as its kept completed record tells it (duration and node when written with them). */
export function completedAttempt(attempt: number, finishedAt: number, runMs: number | null, node: string | null): AttemptRecord {
  return {
    attempt, node, startedAt: runMs === null ? null : finishedAt - runMs, endedAt: finishedAt, outcome: "completed",
    status: null, exitCode: null, error: null,
  };
}

/** The columns of a move's attempt record, batch-wise (the arrays a PostgreSQL statement unnests, or one row's values). */
export function attemptColumns(moves: ReadonlyArray<{ error?: string; end?: AttemptEnd }>, now: number) {
  return {
    outcome: moves.map((m) => m.end?.outcome ?? "failed"),
    endedAt: moves.map((m) => m.end?.endedAt ?? now),
    status: moves.map((m) => m.end?.status ?? null),
    exitCode: moves.map((m) => m.end?.exitCode ?? null),
    error: moves.map((m) => (m.error === undefined ? null : attemptError(m.error))),
  };
}

export interface RetryMove extends ClaimRef {
  runAt: number;
  error: string;
  /** The attempt's record (absent: "failed", ended now). */
  end?: AttemptEnd;
}

/**
 * A target pushed back (429/503 with Retry-After): the job waits until runAt without using the
 * attempt it just made, and its throttle count goes up by one.
 */
export interface ThrottleMove extends ClaimRef {
  runAt: number;
  error: string;
  end?: AttemptEnd;
}

export interface BuryMove extends ClaimRef {
  error: string;
  end?: AttemptEnd;
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
  /** The job's flow-control key, or null. */
  key: string | null;
  /** No attempt starts after this moment (ms), or null. Not kept with completed records. */
  startBy: number | null;
  /** Times a target pushed back and the job waited without using an attempt. */
  throttles: number;
  /** The W3C traceparent the job was submitted with, or null (not kept with completed records). */
  trace?: string | null;
  /** Why a pending or scheduled job waits, null while it runs, as this node sees it (absent for dead and completed jobs). */
  waitingFor?: WaitReason | null;
  /** Completed records only (kept with --keep-completed; they have no payload: "null"). */
  finishedAt?: number;
  result?: string | null;
  /** The attempts that did not complete the job, oldest first (at most ATTEMPTS_KEPT); a kept completed record adds its own last. */
  attemptHistory?: AttemptRecord[];
}

/** claimNext takes at most `room` jobs of `type` (a type at its concurrency limit has room 0). */
export interface TypeCap {
  type: string;
  room: number;
}

/** The order of a listing: by id, oldest first (ascending) or newest first (descending). */
export type ListOrder = "oldest" | "newest";

/**
 * Which dead jobs a listing shows: ids past `afterId` in the listing's order (keyset pagination;
 * 0 starts at the first), optionally one type. Oldest first unless `order` says otherwise.
 */
export interface DeadQuery {
  type?: string;
  afterId: number;
  order?: ListOrder;
  limit: number;
  /**
   * A budget of payload bytes (UTF-8): the listing stops after the row whose payload takes the
   * total past it. Every row returned starts within the budget (the first always does), so the
   * caller holds at most maxBytes plus one payload, and a last row past the budget says more follow.
   */
  maxBytes?: number;
}

/**
 * Which jobs an operator's listing shows: one state (pending and scheduled split at the `now` the
 * listing is given), optionally one type, in id order, a page at a time (keyset pagination: ids
 * past `afterId` in `order`, 0 or absent starting at the first), with the byte budget of DeadQuery.
 */
export interface JobQuery {
  state: JobState;
  type?: string;
  order: ListOrder;
  afterId?: number;
  limit: number;
  /** As DeadQuery.maxBytes. */
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

/** A recurring schedule's last enqueued tick (ms) and the job that tick made. */
export interface ScheduleState {
  name: string;
  lastTick: number;
  lastJobId: number;
}
