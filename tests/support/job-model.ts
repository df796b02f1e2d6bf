// job-model.ts (test support): the reference model of the job state machine that the model-based
// store test holds a real Store to. Plain records and one short rule per store move; no store and
// no I/O here. Each move applies itself and returns what the store must answer.
import type { ClaimRef, ClaimedJob, ExpiredJob, InsertResult, JobState, NewJob, PendingEntry, StoreCounts, StoreStats, TypeCounts } from "../../src/store/rows.ts";

/**
 * The model's clock starts here (November 2023) and only moves forward by ticks: it must stay in
 * the past of real time, as PostgreSQL's reapExpired also requires a lease to have ended by the
 * server's own clock (clock_timestamp()); a T0 in the future would leave every lease unreaped.
 */
export const T0 = 1_700_000_000_000;

/** Where a job is. "gone": it left for good (completed without a record, cancelled, deleted, pruned). */
export type ModelState = "pending" | "inflight" | "dead" | "completed" | "gone";

export interface ModelJob {
  id: number;
  type: string;
  payload: string;
  priority: number;
  maxAttempts: number;
  timeoutMs: number | null;
  key: string | null;
  /** No attempt starts after this moment: a claim or the sweep moves the job to dead as expired instead. */
  startBy: number | null;
  createdAt: number;
  state: ModelState;
  attempts: number;
  /** Times a target pushed back on it (the throttle move). */
  throttles: number;
  runAt: number;
  /** The last error, and whether the model knows its text (the reaper and a restart write their own). */
  lastError: string | null;
  lastErrorExact: boolean;
  owner: string | null;
  leaseUntil: number | null;
  failedAt: number | null;
  finishedAt: number | null;
  /** A completed record's expiry: pruning takes it from then on. */
  expiresAt: number | null;
  result: string | null;
}

/** A claim as it was handed out: the pool's handle on one attempt. */
export interface IssuedRef extends ClaimRef {
  owner: string;
}

/** What `get` must show for a job (lastError compared apart: see lastErrorExact). */
export interface ExpectedView {
  id: number; type: string; state: JobState; priority: number; attempts: number; maxAttempts: number;
  runAt: number; createdAt: number; payload: string; owner: string | null; leaseUntil: number | null;
  failedAt: number | null; finishedAt: number | null; result: string | null; startBy: number | null; throttles: number;
}

/**
 * What `ORDER BY key LIMIT limit` may take from `sorted` (ascending by `key`): all of `sure`, and
 * `more` of `tied`, the rows whose key equals the last taken one when the limit cuts through them
 * (the database may break that tie either way).
 */
export function cutAt<T>(sorted: T[], key: (x: T) => number, limit: number): { sure: T[]; tied: T[]; more: number } {
  if (limit >= sorted.length) return { sure: sorted, tied: [], more: 0 };
  if (limit <= 0) return { sure: [], tied: [], more: 0 };
  const last = key(sorted[limit - 1]!);
  if (key(sorted[limit]!) !== last) return { sure: sorted.slice(0, limit), tied: [], more: 0 };
  const sure = sorted.filter((x) => key(x) < last);
  return { sure, tied: sorted.filter((x) => key(x) === last), more: limit - sure.length };
}

const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;

export class JobModel {
  now = T0;
  readonly jobs = new Map<number, ModelJob>();
  /** Idempotency key → the job holding it. */
  readonly keys = new Map<string, number>();
  /** Every claim ever handed out, in order (stale ones stay: late moves name them). */
  readonly issued: IssuedRef[] = [];
  /** The paused types: no claim starts their jobs, and a leased insert of one goes to pending. */
  readonly paused = new Set<string>();
  private lastId = 0;

  inState(state: ModelState): ModelJob[] {
    return [...this.jobs.values()].filter((j) => j.state === state).sort(byId);
  }

  /** The claim each running attempt holds now. */
  liveRefs(): IssuedRef[] {
    return this.inState("inflight").map((j) => ({ id: j.id, attempt: j.attempts, owner: j.owner! }));
  }

  /** insert/add: checks the store's answer (it alone knows new ids) and applies it. */
  insert(jobs: NewJob[], answer: InsertResult[]): string | null {
    if (answer.length !== jobs.length) return `answered ${answer.length} results for ${jobs.length} jobs`;
    for (let i = 0; i < jobs.length; i++) {
      const j = jobs[i]!;
      const got = answer[i]!;
      const holder = j.idempotencyKey === undefined ? undefined : this.keys.get(j.idempotencyKey);
      if (holder !== undefined) {
        if (got.id !== holder || !got.duplicate) return `job ${i} (key ${j.idempotencyKey}, held by ${holder}) got ${JSON.stringify(got)}`;
        continue;
      }
      if (got.duplicate) return `job ${i} (key ${j.idempotencyKey ?? "none"}, not held) reported as a duplicate of ${got.id}`;
      const held = j.lease !== undefined && this.paused.has(j.type);
      if ((got.held ?? false) !== held) return `job ${i} (type ${j.type}${j.lease ? ", leased" : ""}) answered held ${got.held ?? false}, not ${held}`;
      if (!(got.id > this.lastId)) return `job ${i} got id ${got.id}, not above the last id handed out (${this.lastId})`;
      this.lastId = got.id;
      const job: ModelJob = {
        id: got.id, type: j.type, payload: j.payload, priority: j.priority, maxAttempts: j.maxAttempts, timeoutMs: j.timeoutMs,
        key: j.idempotencyKey ?? null, startBy: j.startBy ?? null, createdAt: this.now, state: "pending", attempts: 0, throttles: 0, runAt: j.runAt,
        lastError: null, lastErrorExact: true, owner: null, leaseUntil: null, failedAt: null, finishedAt: null, expiresAt: null, result: null,
      };
      this.jobs.set(job.id, job);
      if (j.idempotencyKey !== undefined) this.keys.set(j.idempotencyKey, job.id);
      if (j.lease !== undefined && !held) this.startAttempt(job, j.lease.owner, j.lease.until);
    }
    return null;
  }

  /**
   * claim(ids): each due pending job named, once: past its deadline it goes to dead as expired, of a
   * paused type it is held, else it starts. Returns each list's ids, ascending.
   */
  claim(ids: number[], owner: string, leaseMs: number): { taken: number[]; held: number[]; expired: number[] } {
    const out = { taken: [] as number[], held: [] as number[], expired: [] as number[] };
    for (const id of new Set(ids)) {
      const j = this.jobs.get(id);
      if (j?.state !== "pending" || j.runAt > this.now) continue;
      if (this.pastDeadline(j)) {
        this.expire(j);
        out.expired.push(id);
      } else if (this.paused.has(j.type)) out.held.push(id);
      else {
        this.startAttempt(j, owner, this.now + leaseMs);
        out.taken.push(id);
      }
    }
    for (const list of Object.values(out)) list.sort((a, b) => a - b);
    return out;
  }

  private pastDeadline(j: ModelJob): boolean {
    return j.startBy !== null && j.startBy < this.now;
  }

  private expire(j: ModelJob): void {
    j.state = "dead";
    j.failedAt = this.now;
    this.setError(j, "expired");
  }

  /** Pending jobs past their deadline, soonest deadline first: what the sweep takes first. */
  overdue(): ModelJob[] {
    return this.inState("pending").filter((j) => this.pastDeadline(j)).sort((a, b) => a.startBy! - b.startBy!);
  }

  /** expirePending took these (see cutAt): dead as expired, whatever their type. */
  expirePending(ids: number[]): ExpiredJob[] {
    return ids.map((id) => this.jobs.get(id)!).sort(byId).map((j) => {
      this.expire(j);
      return { id: j.id, type: j.type };
    });
  }

  /** pauseType / resumeType: whether the paused set changed. */
  setPaused(type: string, paused: boolean): boolean {
    if (this.paused.has(type) === paused) return false;
    if (paused) this.paused.add(type);
    else this.paused.delete(type);
    return true;
  }

  /** Due pending jobs that may start (type not paused, deadline not passed), most urgent first: by aging key (runAt − priority × agingMs), then id. */
  urgent(agingMs: number): ModelJob[] {
    const key = (j: ModelJob) => j.runAt - j.priority * agingMs;
    return this.inState("pending").filter((j) => j.runAt <= this.now && !this.paused.has(j.type) && !this.pastDeadline(j))
      .sort((a, b) => key(a) - key(b) || a.id - b.id);
  }

  /** peekUrgent: the `limit` most urgent due jobs, most urgent first; nothing changes. */
  peekUrgent(agingMs: number, limit: number): PendingEntry[] {
    return this.urgent(agingMs).slice(0, Math.max(limit, 0)).map((j) => this.entry(j));
  }

  /**
   * claimNext's choice (ids ascending; the caller then claims them): the most urgent due jobs, up to
   * `limit`, none of a type whose room is 0 or less and at most `room` of each capped type.
   */
  claimNextIds(limit: number, agingMs: number, caps: Map<string, number>): number[] {
    const room = new Map(caps);
    const chosen: number[] = [];
    for (const j of this.urgent(agingMs)) {
      if (chosen.length >= limit) break;
      const left = room.get(j.type);
      if (left !== undefined) {
        if (left <= 0) continue;
        room.set(j.type, left - 1);
      }
      chosen.push(j.id);
    }
    return chosen.sort((a, b) => a - b);
  }

  /** The job as a successful claim hands it to a worker. */
  claimed(id: number): ClaimedJob {
    const j = this.jobs.get(id)!;
    return {
      id, type: j.type, payload: j.payload, priority: j.priority, attempts: j.attempts, maxAttempts: j.maxAttempts,
      timeoutMs: j.timeoutMs, runAt: j.runAt, createdAt: j.createdAt, lastError: j.lastError,
      key: null, startBy: j.startBy, throttles: j.throttles, trace: null,
    };
  }

  /** Fenced moves out of inflight take effect only for the attempt running now; one at a time, in order. */
  private fenced(ref: ClaimRef, owner?: string): ModelJob | null {
    const j = this.jobs.get(ref.id);
    if (j?.state !== "inflight" || j.attempts !== ref.attempt) return null;
    if (owner !== undefined && j.owner !== owner) return null;
    return j;
  }

  /** With `keep`, each job leaves a completed record (holding its key) that expires at keep.expiresAt. */
  complete(refs: ClaimRef[], keep: { finishedAt: number; expiresAt: number } | undefined, results: (string | null)[]): boolean[] {
    return refs.map((r, i) => {
      const j = this.fenced(r);
      if (!j) return false;
      this.stopAttempt(j);
      if (keep !== undefined) {
        j.state = "completed";
        j.finishedAt = keep.finishedAt;
        j.expiresAt = keep.expiresAt;
        j.result = results[i] ?? null;
      } else this.leave(j);
      return true;
    });
  }

  /** A cancelled running attempt: removed like a completion, never kept. */
  completeCancelled(refs: ClaimRef[]): boolean[] {
    return this.complete(refs, undefined, []);
  }

  retry(moves: { id: number; attempt: number; runAt: number; error: string }[]): boolean[] {
    return moves.map((m) => {
      const j = this.fenced(m);
      if (!j) return false;
      this.stopAttempt(j);
      j.state = "pending";
      j.runAt = m.runAt;
      this.setError(j, m.error);
      return true;
    });
  }

  /** A target pushed back: pending at runAt, the attempt not counted, one more throttle. */
  throttle(moves: { id: number; attempt: number; runAt: number; error: string }[]): boolean[] {
    return moves.map((m) => {
      const j = this.fenced(m);
      if (!j) return false;
      this.stopAttempt(j);
      j.state = "pending";
      j.attempts -= 1;
      j.throttles += 1;
      j.runAt = m.runAt;
      this.setError(j, m.error);
      return true;
    });
  }

  bury(moves: { id: number; attempt: number; error: string }[]): boolean[] {
    return moves.map((m) => {
      const j = this.fenced(m);
      if (!j) return false;
      this.stopAttempt(j);
      j.state = "dead";
      j.failedAt = this.now;
      this.setError(j, m.error);
      return true;
    });
  }

  extendLeases(refs: ClaimRef[], owner: string, until: number): boolean[] {
    return refs.map((r) => {
      const j = this.fenced(r, owner);
      if (!j) return false;
      j.leaseUntil = until;
      return true;
    });
  }

  /** Shutdown hand-back: pending at once, the aborted attempt not counted, due at its old run time. */
  release(refs: ClaimRef[], owner: string): PendingEntry[] {
    const back: PendingEntry[] = [];
    for (const r of refs) {
      const j = this.fenced(r, owner);
      if (!j) continue;
      this.stopAttempt(j);
      j.state = "pending";
      j.attempts -= 1;
      back.push(this.entry(j));
    }
    return back.sort(byId);
  }

  cancelPending(ids: number[]): boolean[] {
    return ids.map((id) => {
      const j = this.jobs.get(id);
      if (j?.state !== "pending") return false;
      this.leave(j);
      return true;
    });
  }

  /**
   * releaseStrays: every running attempt of `owner` but those of the jobs in `keep` back to pending
   * at once, the attempt not counted, run time and last error as they were.
   */
  releaseStrays(owner: string, keep: number[]): PendingEntry[] {
    const back: PendingEntry[] = [];
    for (const j of this.inState("inflight")) {
      if (j.owner !== owner || keep.includes(j.id)) continue;
      this.stopAttempt(j);
      j.state = "pending";
      j.attempts -= 1;
      back.push(this.entry(j));
    }
    return back;
  }

  /** Inflight jobs whose lease ended before now, by lease end: what the reaper takes first. */
  expired(): ModelJob[] {
    return this.inState("inflight").filter((j) => j.leaseUntil! < this.now).sort((a, b) => a.leaseUntil! - b.leaseUntil!);
  }

  /** reapExpired took these (see cutAt): back to pending, due now, or dead after the final attempt. */
  reap(ids: number[]): PendingEntry[] {
    return this.handBack(ids.map((id) => this.jobs.get(id)!), true);
  }

  /** recoverOwner: every attempt of `owner` handed back, run time kept. */
  recoverOwner(owner: string): PendingEntry[] {
    return this.handBack(this.inState("inflight").filter((j) => j.owner === owner), false);
  }

  /** A hand-back without a verdict keeps the attempt counted: the final one goes to dead. */
  private handBack(jobs: ModelJob[], dueNow: boolean): PendingEntry[] {
    const back: PendingEntry[] = [];
    for (const j of jobs) {
      this.stopAttempt(j);
      if (j.attempts >= j.maxAttempts) {
        j.state = "dead";
        j.failedAt = this.now;
        j.lastErrorExact = false;
        continue;
      }
      j.state = "pending";
      if (dueNow) j.runAt = this.now;
      if (j.lastError === null && j.lastErrorExact) j.lastErrorExact = false;
      back.push(this.entry(j));
    }
    return back.sort(byId);
  }

  /** Dead → pending, attempts reset, due at `at` (the operator's clock). */
  retryDead(ids: number[], at = this.now): PendingEntry[] {
    const back: PendingEntry[] = [];
    for (const id of new Set(ids)) {
      const j = this.jobs.get(id);
      if (j?.state !== "dead") continue;
      j.state = "pending";
      j.attempts = 0;
      j.throttles = 0;
      j.runAt = at;
      j.failedAt = null;
      j.startBy = null;
      back.push(this.entry(j));
    }
    return back.sort(byId);
  }

  /** Of one type, those that failed at or before `at`, lowest ids first. */
  retryDeadOfType(type: string, limit: number, at: number): PendingEntry[] {
    const ids = this.inState("dead").filter((j) => j.type === type && j.failedAt! <= at).slice(0, limit).map((j) => j.id);
    return this.retryDead(ids, at);
  }

  deleteDead(ids: number[]): boolean[] {
    return ids.map((id) => {
      const j = this.jobs.get(id);
      if (j?.state !== "dead") return false;
      this.leave(j);
      return true;
    });
  }

  deleteDeadOfType(type: string, limit: number): number {
    const jobs = this.inState("dead").filter((j) => j.type === type).slice(0, limit);
    for (const j of jobs) this.leave(j);
    return jobs.length;
  }

  /** Completed records expired by `at`, soonest expiry first: what pruning takes first. */
  prunable(at: number): ModelJob[] {
    return this.inState("completed").filter((j) => j.expiresAt! <= at).sort((a, b) => a.expiresAt! - b.expiresAt!);
  }

  /** pruneCompleted took these records (see cutAt). */
  prune(ids: number[]): void {
    for (const id of ids) this.leave(this.jobs.get(id)!);
  }

  view(id: number): ExpectedView | null {
    const j = this.jobs.get(id)!;
    if (j.state === "gone") return null;
    const state: JobState = j.state === "pending" && j.runAt > this.now ? "scheduled" : j.state;
    return {
      id, type: j.type, state, priority: j.priority, attempts: j.attempts, maxAttempts: j.maxAttempts, runAt: j.runAt,
      createdAt: j.createdAt, payload: j.state === "completed" ? "null" : j.payload, owner: j.owner, leaseUntil: j.leaseUntil,
      failedAt: j.failedAt, finishedAt: j.finishedAt, result: j.result, startBy: j.state === "completed" ? null : j.startBy, throttles: j.state === "completed" ? 0 : j.throttles,
    };
  }

  counts(): StoreCounts {
    return { pending: this.inState("pending").length, inflight: this.inState("inflight").length, dead: this.inState("dead").length };
  }

  stats(): StoreStats {
    const types = new Map<string, TypeCounts>();
    let oldestDueAt: number | null = null;
    for (const j of [...this.jobs.values()].sort(byId)) {
      if (j.state === "gone") continue;
      let t = types.get(j.type);
      if (!t) types.set(j.type, (t = { type: j.type, pending: 0, scheduled: 0, inflight: 0, dead: 0, completed: 0 }));
      if (j.state !== "pending") t[j.state]++;
      else if (j.runAt > this.now) t.scheduled++;
      else {
        t.pending++;
        if (oldestDueAt === null || j.runAt < oldestDueAt) oldestDueAt = j.runAt;
      }
    }
    return { types: [...types.values()].sort((a, b) => (a.type < b.type ? -1 : 1)), oldestDueAt };
  }

  entries(): PendingEntry[] {
    return this.inState("pending").map((j) => this.entry(j));
  }

  private entry(j: ModelJob): PendingEntry {
    return { id: j.id, type: j.type, priority: j.priority, runAt: j.runAt, key: null };
  }

  private startAttempt(j: ModelJob, owner: string, until: number): void {
    j.state = "inflight";
    j.attempts += 1;
    j.owner = owner;
    j.leaseUntil = until;
    this.issued.push({ id: j.id, attempt: j.attempts, owner });
  }

  private stopAttempt(j: ModelJob): void {
    j.owner = null;
    j.leaseUntil = null;
  }

  private setError(j: ModelJob, error: string): void {
    j.lastError = error;
    j.lastErrorExact = true;
  }

  /** The job leaves the system for good and releases its idempotency key. */
  private leave(j: ModelJob): void {
    j.state = "gone";
    if (j.key !== null && this.keys.get(j.key) === j.id) this.keys.delete(j.key);
  }
}
