// remote.ts: attempts run by workers outside this process, for job types with `pull = true`. Workers
// ask for jobs with a long-poll (POST /claim); while one waits, its types have room in this pool
// (slots.ts asks room()), so their jobs are claimed by the same claimer, in the same order and under
// the same flow control as any other handler's; each claimed job is handed to the longest-waiting
// poll that asked for its type, and its attempt stays live here until the worker completes or fails
// it, or its lease ends. Every move is fenced by the claim (job id and attempt), like the pool's own.
//
// The lease is the store's (lease_until): the pool's heartbeat leaves remote attempts alone, and a
// worker's heartbeat, sent to any node, extends it there. The node that handed a job out watches its
// lease: when it ends without a word from the worker (and the store agrees no other node extended
// it), the attempt fails ("lease expired") and is retried with backoff like a timeout, or buried.
// A complete or fail sent to another node is made there from the stored row, fenced the same way.
import { HandBackError, JobQueueError, LeaseExpiredError, LeaseLostError, PermanentError, badRequest, unavailable } from "../errors.ts";
import type { HandlerRegistry } from "../handlers/handler.ts";
import type { Logger } from "../logger.ts";
import type { ClaimedJob, JobView } from "../store/rows.ts";
import type { Admin, JobMoves } from "../store/store.ts";
import { buriedAfter, type Outcome, type SettleResult } from "./settler.ts";
import { agingKey } from "../aging.ts";
import type { Clock } from "../clock.ts";

/** A job as a remote worker receives it. */
export interface RemoteJob {
  id: number;
  type: string;
  /** The payload as stored: JSON text. */
  payload: string;
  attempt: number;
  maxAttempts: number;
  priority: number;
  key: string | null;
  /** The W3C traceparent the job was submitted with, or null. */
  traceparent: string | null;
  leaseToken: string;
  /** Epoch ms: complete, fail or heartbeat before this. */
  leaseUntil: number;
}

export interface ClaimRequest {
  types: string[];
  /** Most jobs in the answer. */
  max: number;
  /** How long to wait for the first job; 0: answer once the jobs ready here now are claimed, or at once. */
  waitMs: number;
  /** The lease each job gets from the answer on (default: the node's --lease-ms). */
  leaseMs?: number;
  /** Aborts the wait (the client went away): jobs not yet answered go back to pending. */
  signal?: AbortSignal;
}

/** How a remote worker's move landed: "took" (or may have), or the claim was gone ("fenced"). */
export type RemoteMoveResult = { ok: true; state: "completed" | "scheduled" | "dead" } | { ok: false };

export interface RemoteDeps {
  store: Pick<JobMoves, "extendLeases"> & Pick<Admin, "get">;
  registry: Pick<HandlerRegistry, "get">;
  clock: Clock;
  owner: string;
  leaseMs: number;
  agingMs: number;
  logger: Logger;
  /** Moves of attempts this node does not hold (the worker's call reached another node than the claim). */
  settle: (job: ClaimedJob, outcome: Outcome, runMs: number) => Promise<SettleResult>;
  /** Polls changed what the pool may claim: claim now (looking in the store too when `store`). */
  wake: (store: boolean) => void;
  /** Ready jobs of `type` in this node's heap that flow control would let start now. */
  readyOf: (type: string) => number;
}

/** How long a poll with waitMs 0 waits at most for jobs ready in this node's heap to be claimed. */
const NOWAIT_CLAIM_MS = 1000;

/** An attempt handed (or about to be handed) to a remote worker. */
interface Live {
  job: ClaimedJob;
  leaseUntil: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  startedAt: number;
  /** Ends the attempt with this outcome (the handler promise the pool awaits). */
  resolve: (result: unknown) => void;
  reject: (err: unknown) => void;
  done: boolean;
}

interface Poll {
  types: ReadonlySet<string>;
  max: number;
  leaseMs: number;
  got: Live[];
  timer: ReturnType<typeof setTimeout> | undefined;
  flushQueued: boolean;
  answer: (jobs: RemoteJob[]) => void;
  fail: (err: unknown) => void;
}

/** A lease token: the job's claim (id, attempt) and the node that holds it, opaque to workers. */
export function leaseToken(id: number, attempt: number, owner: string): string {
  return Buffer.from(JSON.stringify([id, attempt, owner])).toString("base64url");
}

/** A lease token's claim, or null when it is not one. */
export function parseLeaseToken(token: string): { id: number; attempt: number; owner: string } | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, "base64url").toString());
    if (!Array.isArray(v) || v.length !== 3) return null;
    const [id, attempt, owner] = v as unknown[];
    if (!Number.isSafeInteger(id) || !Number.isSafeInteger(attempt) || typeof owner !== "string") return null;
    if ((id as number) < 1 || (attempt as number) < 1 || owner.length === 0 || owner.length > 200) return null;
    return { id: id as number, attempt: attempt as number, owner };
  } catch {
    return null;
  }
}

export const leaseLost = (id: number) =>
  new JobQueueError("lease_lost", `job ${id}: this lease is no longer held (the job completed, failed, was cancelled, or its lease expired)`, 409);

export function createRemoteWorkers(deps: RemoteDeps) {
  const { store, registry, clock, owner, logger } = deps;
  /** Polls waiting for jobs, oldest first. */
  const waiting: Poll[] = [];
  /** Remote attempts held here, by job id. */
  const lives = new Map<number, Live>();
  /** Remote attempts handed out or being handed out, by type. */
  const liveByType = new Map<string, number>();
  /** Workers' calls waiting for the move that ends an attempt to land, by job id. */
  const awaitingMove = new Map<number, { attempt: number; reply: (how: SettleResult) => void }>();
  let stopped = false;

  const isPull = (type: string) => registry.get(type)?.pull === true;

  function countLive(type: string, delta: number): void {
    const n = (liveByType.get(type) ?? 0) + delta;
    if (n === 0) liveByType.delete(type);
    else liveByType.set(type, n);
  }

  /** Jobs of `type` the waiting polls still want. */
  function wanted(type: string): number {
    let n = 0;
    for (const p of waiting) if (p.types.has(type)) n += p.max - p.got.length;
    return n;
  }

  /** Forget an attempt (it ended, by the worker, its lease, or the pool): no timer, no count. */
  function forget(live: Live): void {
    if (live.done) return;
    live.done = true;
    clearTimeout(live.timer);
    if (lives.get(live.job.id) === live) lives.delete(live.job.id);
    countLive(live.job.type, -1);
  }

  function arm(live: Live): void {
    clearTimeout(live.timer);
    live.timer = setTimeout(() => void leaseEnded(live), Math.max(0, live.leaseUntil - clock()) + 1);
  }

  /** The lease ran out here: unless another node extended it, the attempt failed. */
  async function leaseEnded(live: Live): Promise<void> {
    if (live.done) return;
    if (live.leaseUntil > clock()) return arm(live);
    let row: JobView | null;
    try {
      row = await store.get(live.job.id, clock());
    } catch {
      live.leaseUntil = clock() + 1000; // the store is down: ask again in a second
      return arm(live);
    }
    if (live.done) return;
    const held = row !== null && row.state === "inflight" && row.attempts === live.job.attempts;
    if (held && row!.leaseUntil !== null && row!.leaseUntil > clock()) {
      live.leaseUntil = row!.leaseUntil; // a heartbeat reached another node
      return arm(live);
    }
    end(live, held ? new LeaseExpiredError() : new LeaseLostError());
  }

  /** End `live`'s attempt with this failure (the pool's handler promise rejects with it). */
  function end(live: Live, err: Error): void {
    if (live.done) return;
    const { reject } = live;
    forget(live);
    reject(err);
  }

  function queueFlush(poll: Poll): void {
    if (poll.flushQueued) return;
    poll.flushQueued = true;
    // The rest of the claim that brought this job starts within this turn: answer with all of it.
    setImmediate(() => void flush(poll));
  }

  function unwait(poll: Poll): boolean {
    const i = waiting.indexOf(poll);
    if (i === -1) return false;
    waiting.splice(i, 1);
    clearTimeout(poll.timer);
    return true;
  }

  /** Answer a poll with what it got, after giving each job the poll's lease. */
  async function flush(poll: Poll): Promise<void> {
    if (!unwait(poll)) return;
    const got = poll.got.filter((l) => !l.done);
    if (got.length === 0) return poll.answer([]);
    const until = clock() + poll.leaseMs;
    let ok: boolean[];
    try {
      ok = await store.extendLeases(got.map((l) => ({ id: l.job.id, attempt: l.job.attempts })), owner, until);
    } catch (err) {
      for (const l of got) handBack(l);
      return poll.fail(err);
    }
    const out: RemoteJob[] = [];
    got.forEach((live, i) => {
      if (live.done) return;
      if (!ok[i]) {
        // Taken away meanwhile (a cancel, or another node reaped it): nothing of it may be written.
        return end(live, new LeaseLostError());
      }
      live.leaseUntil = until;
      arm(live);
      const j = live.job;
      out.push({
        id: j.id, type: j.type, payload: j.payload, attempt: j.attempts, maxAttempts: j.maxAttempts, priority: j.priority,
        key: j.key, traceparent: j.trace ?? null, leaseToken: leaseToken(j.id, j.attempts, owner), leaseUntil: until,
      });
    });
    // In the order the heap ranks them (a claim's rows come back in any order).
    const rank = new Map(got.map((l) => [l.job.id, agingKey(l.job.runAt, l.job.priority, deps.agingMs)]));
    out.sort((a, b) => rank.get(a.id)! - rank.get(b.id)! || a.id - b.id);
    poll.answer(out);
  }

  /** Not answered to any worker: back to pending, uncounted. */
  const handBack = (live: Live) => end(live, new HandBackError());

  /** End `live` as the worker said and wait for its move to land (the pool settles it and calls settled()). */
  function afterMove(live: Live, outcome: Outcome, value: unknown): Promise<SettleResult> {
    return new Promise<SettleResult>((reply) => {
      awaitingMove.set(live.job.id, { attempt: live.job.attempts, reply });
      const { resolve, reject } = live;
      forget(live);
      if (outcome.ok) resolve(value);
      else reject(outcome.cause);
    });
  }

  function answerOf(how: SettleResult, job: ClaimedJob, outcome: Outcome): RemoteMoveResult {
    if (how === "abandoned") throw unavailable("shutting down: the move was not made; the job's lease returns it");
    if (how === "fenced") return { ok: false };
    const state = outcome.ok ? "completed" : buriedAfter(job, outcome) ? "dead" : "scheduled";
    return { ok: true, state };
  }

  /** The claim a token names, checked against the job id in the path. */
  function claimOf(id: number, token: string): { attempt: number; owner: string } {
    const claim = parseLeaseToken(token);
    if (claim === null) throw badRequest("leaseToken: is not a lease token from POST /claim", "invalid_request");
    if (claim.id !== id) throw badRequest(`leaseToken: belongs to job ${claim.id}, not job ${id}`, "invalid_request");
    return claim;
  }

  /** The attempt held here for this claim, if any. */
  function liveFor(id: number, attempt: number, claimOwner: string): Live | undefined {
    const live = lives.get(id);
    return live !== undefined && !live.done && claimOwner === owner && live.job.attempts === attempt ? live : undefined;
  }

  /** A worker's move on a claim this node does not hold: made from the stored row, fenced the same way. */
  async function settleStored(id: number, claim: { attempt: number; owner: string }, outcome: Outcome): Promise<RemoteMoveResult> {
    const row = await store.get(id, clock());
    if (row === null || row.state !== "inflight" || row.attempts !== claim.attempt || row.owner !== claim.owner) return { ok: false };
    const job: ClaimedJob = {
      id: row.id, type: row.type, payload: row.payload, priority: row.priority, attempts: row.attempts,
      maxAttempts: row.maxAttempts, timeoutMs: null, runAt: row.runAt, createdAt: row.createdAt,
      lastError: row.lastError, key: row.key, startBy: row.startBy, throttles: row.throttles, trace: row.trace ?? null,
    };
    return answerOf(await deps.settle(job, outcome, 0), job, outcome);
  }

  async function move(id: number, token: string, outcome: Outcome, value: unknown): Promise<RemoteMoveResult> {
    const claim = claimOf(id, token);
    const live = liveFor(id, claim.attempt, claim.owner);
    if (live === undefined) return settleStored(id, claim, outcome);
    return answerOf(await afterMove(live, outcome, value), live.job, outcome);
  }

  return {
    /**
     * Room for jobs of `type` in this pool: undefined for a type that is not pulled; else what the
     * waiting polls want, less the jobs already claimed for them but not yet handed out.
     */
    room(type: string, occupied: number): number | undefined {
      if (!isPull(type)) return undefined;
      return wanted(type) - (occupied - (liveByType.get(type) ?? 0));
    },
    /** Polls waiting for jobs of `type` here. */
    waitingFor(type: string): number {
      let n = 0;
      for (const p of waiting) if (p.types.has(type)) n++;
      return n;
    },
    /** Jobs of `type` handed (or being handed) to remote workers from here. */
    out(type: string): number {
      return liveByType.get(type) ?? 0;
    },
    /** Whether `id` runs remotely from here (the pool's heartbeat leaves its lease to the worker). */
    holds(id: number): boolean {
      return lives.has(id);
    },

    /** The pool's handler for a pull type's job: hand it to the longest-waiting poll that wants it. */
    run(job: ClaimedJob, signal: AbortSignal): Promise<unknown> {
      const poll = waiting.find((p) => p.types.has(job.type) && p.got.length < p.max);
      // More were claimed than polls wanted (a poll for several types): back to pending, uncounted.
      if (poll === undefined) return Promise.reject(new HandBackError());
      return new Promise((resolve, reject) => {
        const live: Live = { job, leaseUntil: 0, timer: undefined, startedAt: clock(), resolve, reject, done: false };
        const older = lives.get(job.id);
        if (older !== undefined) end(older, new LeaseLostError());
        lives.set(job.id, live);
        countLive(job.type, 1);
        // The pool ended the attempt (timeout, cancel, shutdown): its outcome is decided; forget it here.
        signal.addEventListener("abort", () => forget(live), { once: true });
        poll.got.push(live);
        if (poll.got.length >= poll.max) void flush(poll);
        else queueFlush(poll);
      });
    },
    /** The pool made the move that ends `job`'s attempt: answer the worker waiting for it. */
    settled(job: ClaimedJob, how: SettleResult): void {
      const waiter = awaitingMove.get(job.id);
      if (waiter === undefined || waiter.attempt !== job.attempts) return;
      awaitingMove.delete(job.id);
      waiter.reply(how);
    },

    /** POST /claim: jobs of `types` for a remote worker, waiting up to waitMs for the first. */
    claim(req: ClaimRequest): Promise<RemoteJob[]> {
      if (stopped || req.signal?.aborted) return Promise.resolve([]);
      for (const type of req.types) {
        if (registry.get(type) === undefined) throw badRequest(`types: unknown job type "${type}"`, "unknown_type");
        if (!isPull(type)) throw badRequest(`types: job type "${type}" is not a pull type (its jobs run here); set pull = true in the types file`, "invalid_request");
      }
      return new Promise<RemoteJob[]>((answer, fail) => {
        const poll: Poll = {
          types: new Set(req.types), max: req.max, leaseMs: req.leaseMs ?? deps.leaseMs, got: [],
          timer: undefined, flushQueued: false, answer, fail,
        };
        const readyHere = req.types.some((t) => deps.readyOf(t) > 0);
        const waitMs = req.waitMs > 0 ? req.waitMs : readyHere ? NOWAIT_CLAIM_MS : 0;
        if (waitMs === 0) return answer([]);
        waiting.push(poll);
        poll.timer = setTimeout(() => void flush(poll), waitMs);
        req.signal?.addEventListener("abort", () => {
          if (!unwait(poll)) return;
          for (const l of poll.got) handBack(l);
          answer([]);
        }, { once: true });
        // Look in the store too when this heap holds none of them (another node's jobs, a restart's).
        deps.wake(!readyHere);
      });
    },
    /** POST /jobs/:id/complete. */
    complete(id: number, token: string, result: string | null): Promise<RemoteMoveResult> {
      return move(id, token, { ok: true, result }, result);
    },
    /** POST /jobs/:id/fail: retried with backoff while attempts are left, unless `retry` is false. */
    fail(id: number, token: string, error: string, retry: boolean): Promise<RemoteMoveResult> {
      const cause = retry ? new Error(error) : new PermanentError(error);
      return move(id, token, { ok: false, error, permanent: !retry, cause }, undefined);
    },
    /** POST /jobs/:id/heartbeat: the lease runs extendMs from now (default: the node's --lease-ms). */
    async heartbeat(id: number, token: string, extendMs?: number): Promise<{ ok: true; leaseUntil: number } | { ok: false }> {
      const claim = claimOf(id, token);
      const until = clock() + (extendMs ?? deps.leaseMs);
      const [ok] = await store.extendLeases([{ id, attempt: claim.attempt }], claim.owner, until);
      if (!ok) return { ok: false };
      const live = liveFor(id, claim.attempt, claim.owner);
      if (live !== undefined) {
        live.leaseUntil = until;
        arm(live);
      }
      return { ok: true, leaseUntil: until };
    },
    /** Shutdown began: waiting polls are answered now (with what they got), new ones get nothing. */
    stop(): void {
      stopped = true;
      for (const poll of [...waiting]) void flush(poll);
    },
  };
}

export type RemoteWorkers = ReturnType<typeof createRemoteWorkers>;
