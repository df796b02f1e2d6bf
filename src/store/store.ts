// store.ts: what a store is, cut into the roles its users play, so each component receives only the
// methods it uses: the pool's and dispatcher's moves, the reaper's and start-up's recovery, the
// operators' reads and actions, and the coordination between processes. Both backends (PostgreSQL,
// embedded SQLite) implement all of them and pass one contract suite (tests/store.contract.ts).
// Times are epoch milliseconds passed in by the caller.
import type { ScheduleState } from "./rows.ts";
import type { FlowLimits } from "./flow-plan.ts";
import type {
  AttemptOutcome, BuryMove, ClaimRef, ClaimResult, ClaimedJob, CompleteMove, DeadQuery, ExpiredJob, InsertResult, JobQuery, JobView, NewJob, PendingEntry, RetryMove, StoreCounts,
  StoreStats, ThrottleMove, TypeCap,
} from "./rows.ts";
import type { Clock } from "../clock.ts";

/** What every backend says about itself. */
export interface StoreInfo {
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
  readonly clock: Clock;
}

/** The moves of the job state machine that the dispatcher (submit) and the worker pool make. */
export interface JobMoves {
  /**
   * Insert jobs in one transaction; result[i] is jobs[i]'s id, or, when its idempotencyKey is held,
   * the id of the job holding it (duplicate). Atomic under concurrent submits of one key; within one
   * call a key's first job wins and later ones map to it. Jobs without a key always insert, with
   * increasing ids in input order.
   */
  add(jobs: NewJob[], now: number): Promise<InsertResult[]>;
  /**
   * Move the given pending ids to inflight in one transaction (attempts + 1, lease, owner), except
   * those flow control holds back for now (`held`: still pending, with why and when to ask again;
   * jobs of a paused type are held with reason "paused") and those past their start-by deadline
   * (`expired`: moved to dead instead, last error "expired", failed at `now`). Ids in none of the
   * lists were claimed elsewhere, cancelled or are not due: the caller drops them.
   * With `limits`, jobs of the types it names start only as their rate and per-key limits allow,
   * weighed in the same transaction against the state every node shares (flow-plan.ts); ids come
   * most urgent first, and that order decides who gets a scarce start.
   */
  claim(ids: number[], owner: string, now: number, leaseMs: number, limits?: FlowLimits): Promise<ClaimResult>;
  /**
   * Claim up to `limit` due pending rows this process's heap may not hold (another node's backlog;
   * a commit whose reply was lost): the most urgent by aging key (run_at − priority × agingMs, then
   * id) among those no one else is claiming, leaving out paused types and jobs past their start-by
   * deadline (the reaper's expirePending takes those). Same effect per row as claim().
   */
  claimNext(limit: number, owner: string, now: number, leaseMs: number, agingMs: number, caps?: TypeCap[]): Promise<ClaimedJob[]>;
  /**
   * The `limit` most urgent due pending rows by aging key (run_at − priority × agingMs, then id),
   * most urgent first, without claiming them: a node compares them with its own heap's top. Leaves
   * out what claimNext leaves out (paused types, jobs past their deadline).
   */
  peekUrgent(now: number, agingMs: number, limit: number): Promise<PendingEntry[]>;
  /**
   * Fenced delete of finished attempts; result[i] says whether refs[i] took effect. With `keep`, each
   * job leaves a completed record (finished at keep.finishedAt, with its result) that keeps its
   * idempotency key until it expires at keep.expiresAt and is pruned; without, the key is released.
   */
  complete(refs: CompleteMove[], keep?: { finishedAt: number; expiresAt: number }): Promise<boolean[]>;
  /** Fenced move inflight → pending with a new run_at and the error. */
  retry(moves: RetryMove[]): Promise<boolean[]>;
  /**
   * Fenced move inflight → pending for attempts a target pushed back: run_at and error as given,
   * attempts − 1 (the attempt is not used up) and throttles + 1.
   */
  throttle(moves: ThrottleMove[]): Promise<boolean[]>;
  /** Fenced move inflight → dead with the error. */
  bury(moves: BuryMove[], now: number): Promise<boolean[]>;
  /**
   * Fenced removal of cancelled attempts (inflight rows): like complete, but never kept as a
   * completed record.
   */
  completeCancelled(refs: ClaimRef[]): Promise<boolean[]>;
  /** Fenced lease extension for running attempts owned by `owner`. */
  extendLeases(refs: ClaimRef[], owner: string, leaseUntil: number): Promise<boolean[]>;
  /**
   * Fenced hand-back of attempts this process aborted itself (shutdown), or of jobs it claimed and
   * never started: inflight → pending at once, the interrupted attempt not counted, due at their old
   * run time (a hand-back is not the job's doing: it keeps its place in line, and a schedule's job
   * the tick that made it).
   */
  release(refs: ClaimRef[], owner: string, now: number, outcome?: AttemptOutcome | null): Promise<PendingEntry[]>;
  /**
   * Hand back every inflight row of `owner` but those in `keep` (the attempts this process is running)
   * to pending at once, the attempt not counted, due at their old run time: rows a claim or leased
   * insert wrote for this process whose answer never came, so none of their attempts ran.
   */
  releaseStrays(owner: string, keep: number[], now: number): Promise<PendingEntry[]>;
}

/** What the reaper and start-up use to take back work that nobody runs, and to prune records. */
export interface Recovery {
  /**
   * Move up to `limit` inflight rows whose lease ended before `now` back to pending (attempts
   * kept; rows on their final attempt go to dead instead). Returns the rows now pending.
   */
  reapExpired(now: number, limit: number): Promise<PendingEntry[]>;
  /**
   * Move up to `limit` pending rows whose start-by deadline passed before `now` to dead (last error
   * "expired", failed at `now`), soonest deadline first, whatever their type (paused or not).
   */
  expirePending(now: number, limit: number): Promise<ExpiredJob[]>;
  /** Start-up: the same hand-back for every inflight row of `owner` (this node's previous run). */
  recoverOwner(owner: string, now: number): Promise<PendingEntry[]>;
  /** Stream every pending row's sort fields, in batches, for rebuilding the heaps. */
  streamPending(batchSize: number): AsyncIterable<PendingEntry[]>;
  /**
   * Delete up to `limit` completed records expired by `now` (soonest first) and release their keys;
   * returns how many. Records written before expiries existed expire `legacyKeepMs` after they finished.
   */
  pruneCompleted(now: number, limit: number, legacyKeepMs: number): Promise<number>;
  /**
   * Delete up to `limit` per-key rate buckets that are full again (their next start is due): a
   * missing bucket reads as full, so this changes no decision and keeps the table to the keys in
   * use. The types' own buckets stay. `now` is the claims' clock on the embedded store (PostgreSQL
   * weighs by its own). Returns how many went.
   */
  pruneBuckets(now: number, limit: number): Promise<number>;
}

/** The operators' reads and actions (the HTTP API, the dashboard, the CLI behind them). */
export interface Admin {
  get(id: number, now: number): Promise<JobView | null>;
  /** Counts by type and state, one grouped query per table; `now` splits pending from scheduled. */
  stats(now: number): Promise<StoreStats>;
  /** Delete pending (or scheduled) jobs in one transaction; result[i] says whether ids[i] was pending. */
  cancelPending(ids: number[]): Promise<boolean[]>;
  /**
   * Dead jobs in id order (state "dead", failedAt set), oldest first unless query.order says
   * newest, at most query.limit of them and, with query.maxBytes, no more payload bytes than that
   * (but always one).
   */
  listDead(query: DeadQuery): Promise<JobView[]>;
  /**
   * Jobs in one state (`now` splits pending from scheduled), optionally of one type, in id order,
   * shown as get() shows them; paged and budgeted like listDead. A job that moves between states
   * while an operator pages may be missed or seen twice; no page holds one twice.
   */
  listJobs(query: JobQuery, now: number): Promise<JobView[]>;
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
}

/**
 * Paused job types, kept in the store so every process sharing it holds them: a claim never starts
 * a job of a paused type (it holds it), and a born-leased insert of one goes to pending instead.
 */
export interface Pauses {
  /** Pause `type` (at `now`); true when it was not paused before. Other processes are told at once. */
  pauseType(type: string, now: number): Promise<boolean>;
  /** Resume `type`; true when it was paused. Other processes are told at once. */
  resumeType(type: string): Promise<boolean>;
  /** Every paused type, by name. */
  pausedTypes(): Promise<string[]>;
  /**
   * The types' own rate buckets (flow-plan.ts): each one's theoretical arrival time of its next
   * start, with the clock the claims weigh them by (the database's on PostgreSQL), read now.
   */
  rateBuckets(): Promise<{ type: string; tat: number; now: number }[]>;
}

/** Coordination between the processes sharing one database (a no-op or nearly on the embedded store). */
export interface Cluster {
  /**
   * Take `id` for this process, exclusively, until close(): throws NodeIdInUseError while another
   * live process holds it. PostgreSQL holds a session advisory lock on a connection of its own, taken
   * again by heartbeatNode() if that connection was replaced (and NodeIdInUseError if someone else
   * took it meanwhile); the embedded store's file lock already makes its process the only one.
   */
  holdNodeId(id: string): Promise<void>;
  /**
   * Node liveness (and, on PostgreSQL, a check that this process still holds its node id): upsert
   * this node's heartbeat (started_at kept from its first call) and return how many nodes have
   * beaten since `aliveSince`, this one included.
   */
  heartbeatNode(id: string, now: number, aliveSince: number): Promise<number>;
  /** A clean shutdown takes the node off the list. */
  removeNode(id: string): Promise<void>;
  /** Tell other processes on this database that jobs arrived (a coalesced hint; no-op when alone). */
  announce(now: number): Promise<void>;
  /**
   * Hear other processes' announcements (onHint), and any process's pause or resume (onPauses: read
   * pausedTypes() again); resolves with a function that stops listening.
   */
  listen(onHint: () => void, onPauses?: () => void): Promise<() => Promise<void>>;
}

/** Opening, checking and closing the store. */
export interface Lifecycle {
  /** Apply numbered migrations; safe when several processes start at once. */
  migrate(): Promise<void>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Recurring schedules' ticks, each enqueued once across nodes and restarts. */
export interface Schedules {
  /**
   * Enqueue `job` as schedule `name`'s tick at `tick` (ms), in one transaction with moving the
   * schedule's last tick forward to it: the job's id, or null when that tick (or a later one) was
   * enqueued already, by this node or another.
   */
  enqueueTick(name: string, tick: number, job: NewJob, now: number): Promise<number | null>;
  /** Every schedule's last enqueued tick and the job it made. */
  scheduleStates(): Promise<ScheduleState[]>;
}

/** A consistent copy of a whole store, to be read once. */
export interface Snapshot {
  /** Its length in bytes. */
  bytes: number;
  /** The SHA-256 of its bytes, in hex, so a reader can tell it arrived whole. */
  sha256: string;
  /** The bytes. Reading them to the end, or cancelling, lets the copy go. */
  stream: ReadableStream<Uint8Array>;
}

/** Copying the store while it serves (GET /admin/backup, `jobqueue backup`). */
export interface Backups {
  /**
   * A consistent copy of the store as of the call: every transaction committed before it, none
   * after. The embedded store copies its file without holding up its writers for long; PostgreSQL
   * throws BackupUnsupportedError (pg_dump and its own replication do that job).
   */
  snapshot(): Promise<Snapshot>;
}

/** A whole store: every role. Only the composition root (queue/jobqueue.ts) holds one. */
export interface Store extends StoreInfo, JobMoves, Recovery, Admin, Pauses, Cluster, Lifecycle, Schedules, Backups {}

/**
 * What only tests and benchmarks call, so no role carries it: both backends offer it beside the
 * Store they return.
 */
export interface StoreTestHooks {
  /** add() for jobs without keys, answering only their ids (increasing, in input order). */
  insert(jobs: NewJob[], now: number): Promise<number[]>;
  /** Rows in each of the three job tables. */
  counts(): Promise<StoreCounts>;
}
