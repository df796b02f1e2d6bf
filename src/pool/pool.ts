// pool.ts: the worker pool, composed of slots.ts (what the slots hold), claimer.ts (filling them),
// attempt.ts (running handlers), settler.ts (the move that ends each attempt), strays.ts and mode.ts.
// Here: start, stop, the lease heartbeat. No ordering decisions (the scheduler's), no SQL (the store's).
//
// ## An attempt's lifecycle
//
// An attempt is one run of one claimed job on this node, always in one of these states:
//
//   CLAIMING ──row returned──▶ LIVE ──handler returns or throws, or an interrupt──▶ ENDED ──move lands──▶ GONE
//      └──────────────── row not returned, or the claim failed ─────────────────────────────────────────▲
//
// CLAIMING  A slot is held for it (slots.hold, slots.reserve) while a claim by id, a pull or a leased
//           insert is out; the row may yet be someone else's. The claimer moves it when the store
//           answers: a returned row goes LIVE (attempts.start); an id not returned gives its slot back;
//           a failed claim gives its slots back and puts its ids back in the heap (a lost answer also
//           makes strays owed). A row that comes back after stop() began is born ENDED and handed back.
// WAITING   Claimed ahead (--claim-ahead-ms): the claim took more jobs than slots were free, because
//           handlers here are short; the row is leased here, its handler not called yet. It is in
//           attempts.running with `waiting` set (the heartbeat keeps its lease) and starts, in the
//           heap's order, when a slot frees. A cancel removes its row, a lost lease drops it, and
//           stop() hands it straight back, uncounted.
// LIVE      In attempts.running, `ended` false, its slot busy (slots.begin). Its handler is called on
//           the next microtask with the job's context and an AbortSignal; the heartbeat extends its
//           lease. It ends at the first of: the handler resolves (done) or throws (failed; a
//           PermanentError: for good), or the pool interrupts it: its TimeoutGroup fires
//           (AttemptTimeoutError), cancel() (CancelledError), the heartbeat finds the lease gone
//           (LeaseLostError), stop() runs out of grace (ShutdownError). An interrupt decides the
//           outcome first, then aborts the signal; the handler's own ending, coming later, is ignored.
// ENDED     `ended` true, its slot free (slots.end; pushback.ts learnt from its answer first); only its store move is left and it is never
//           interrupted again, so a result that exists is always settled. attempt.ts picks the move
//           by the outcome's class (instanceof), the settler makes it, fenced by the claim:
//             done → complete          failed, attempts left → retry (run_at + backoff; back in the heap)
//             ThrottledError, throttles left → throttle (run_at + Retry-After; the attempt not used)
//             CancelledError → remove  failed for good, out of attempts, or no handler → bury
//             LeaseLostError → none (the reaper has the row)
//             ShutdownError → stop() hands it back to pending (release; the attempt uncounted)
// GONE      Out of attempts.running once its move landed (or was given up after a hard stop); the
//           waiters (settled(), stop()) are told.
//
// ## The pool's modes (mode.ts; only mode.enter() moves them, and it refuses any move not drawn here)
//
//   new ──start()──▶ running ──claim or pull failed──▶ backingOff ──timer──▶ running
//                    running ──strays owed, nothing out──▶ sweeping ──swept──▶ running
//                                                         sweeping ──failed──▶ backingOff
//   new | running | backingOff | sweeping ──stop()──▶ stopping ──grace over──▶ hardStop
//
// new         Built, not started: nothing is claimed.
// running     Claims from the heap, pulls from the store and slots for leased inserts go out while
//             slots are free and no stray hand-back is owed.
// backingOff  A claim, a pull or a sweep failed: nothing is claimed until the timer (100 ms, doubling with each
//             failure in a row, at most 2 s) moves it back to running, which sweeps if owed, and claims.
// sweeping    Handing back stray leases (strays.ts): rows a claim, pull or leased insert whose answer
//             was lost may have leased here. It starts only from running with nothing out, so it never
//             meets a row on its way to a worker; nothing is claimed meanwhile.
// stopping    stop() began: nothing is claimed or backed off and no sweep starts by itself; attempts
//             may finish within the grace; a row whose claim lands now is handed straight back.
// hardStop    The grace ran out: live attempts are interrupted and handed back; the moves of ended
//             ones keep retrying a failing store for 5 s more, then leave the job to its lease.
//             stop() makes the last owed sweep itself, in either stopping mode.
// Beside the mode, one debt: strays owed (strays.ts), set by a lost answer, cleared when a sweep starts,
// set again when it fails. adopt() reads the store in every mode but new and the two stopping ones.
import { claimRate, isLimited } from "../config/flow-policy.ts";
import type { FlowLimit, FlowLimits } from "../store/flow-plan.ts";
import type { JobView, WaitReason } from "../store/rows.ts";
import type { BackoffPolicy } from "../queue/backoff.ts";
import { LeaseLostError, ShutdownError, errorMessage } from "../errors.ts";
import type { HandlerRegistry } from "../handlers/handler.ts";
import type { Logger } from "../logger.ts";
import type { Scheduler } from "../queue/scheduler.ts";
import type { Admin, JobMoves, StoreInfo } from "../store/store.ts";
import { createAttempts } from "./attempt.ts";
import { createClaimer } from "./claimer.ts";
import { createGate } from "./gate.ts";
import { createPoolMode } from "./mode.ts";
import { createPushback, type FlowStatus } from "./pushback.ts";
import { createRemoteWorkers } from "./remote.ts";
import { createSettler } from "./settler.ts";
import { createSlots } from "./slots.ts";
import { createStrays } from "./strays.ts";
import { createWaiters } from "./waiters.ts";
import type { Clock } from "../clock.ts";

export interface WorkerEvents {
  started(type: string, waitMs: number): void;
  completed(type: string, runMs: number): void;
  /** A failed attempt (error, timeout); `next` says where the job went. */
  failed(type: string, runMs: number, next: "retry" | "dead"): void;
  /** A fenced move that found its claim gone (the reaper or a cancel got there first). */
  fenced(move: string): void;
  /** The target pushed back (429/503 with Retry-After): the job waits `delayMs` without using its attempt. */
  throttled?(type: string, runMs: number, delayMs: number): void;
  /** A cancelled attempt's row was removed. */
  cancelled?(type: string): void;
  /** Jobs claimed straight from the store by pull(), not from this node's heap. */
  pulled(count: number): void;
  /** Due jobs taken into this node's heap from the store because they were more urgent than its own. */
  adopted?(count: number): void;
  /** Jobs whose submit inserted them already leased to this node (no claim needed to start them). */
  bornLeased?(count: number): void;
  /** A claim of a due job was held back by flow control (the job stays pending). */
  held?(type: string, reason: string): void;
  /** Jobs past their start-by deadline moved to dead instead of starting (by a claim or the reaper's sweep). */
  expired?(type: string, count: number): void;
}

/** The store calls the pool makes: JobMoves but add() (the dispatcher's), whether calls block, and reading one job (remote workers' moves). */
export type PoolStore = Pick<
  JobMoves,
  "claim" | "claimNext" | "peekUrgent" | "complete" | "retry" | "throttle" | "bury" | "completeCancelled" | "extendLeases" | "release" | "releaseStrays"
> & Pick<StoreInfo, "blocking"> & Pick<Admin, "get">;

export interface WorkerPoolDeps {
  store: PoolStore;
  scheduler: Scheduler;
  registry: HandlerRegistry;
  clock: Clock;
  owner: string;
  concurrency: number;
  /**
   * Claim ahead: when handlers are short, claims take beyond the free slots as many jobs as the
   * slots run in this long (measured from recent run times), and those wait here for a slot in
   * the heap's order; a job submitted later waits behind them about this long. 0: never.
   */
  claimAheadMs?: number;
  leaseMs: number;
  /** Completed jobs leave a record (with the handler's string result) that expires this long after; 0: none. */
  keepCompletedMs?: number;
  /** The scheduler's aging, so jobs pulled from the store are picked by the same key. */
  agingMs: number;
  backoff: BackoffPolicy;
  events: WorkerEvents;
  logger: Logger;
  random?: () => number;
}

export function createWorkerPool(deps: WorkerPoolDeps) {
  const { store, scheduler, registry, clock, owner, leaseMs, events, logger } = deps;
  const keepMs = deps.keepCompletedMs ?? 0;
  // Group commit, for claims and for the moves that end attempts: a blocking (embedded) store gathers
  // a whole event-loop turn per flush; an asynchronous one gathers what arrives while a flush is out.
  const defer = store.blocking ? (fn: () => void) => void setImmediate(fn) : queueMicrotask;
  let heartbeatTimer: ReturnType<typeof setInterval> | null = null;

  const mode = createPoolMode({
    clock, logger,
    onResume: () => {
      strays.maybeSweep();
      claimer.pump();
    },
  });
  const gate = createGate({ clock, onOpen: () => claimer.pump() });
  const pushback = createPushback({
    clock, registry, gate, logger,
    poolSize: deps.concurrency,
    onRoom: () => {
      claimer.wantPull();
      claimer.pump();
    },
  });
  const remote = createRemoteWorkers({
    store, registry, clock, owner, leaseMs, logger,
    agingMs: deps.agingMs,
    settle: (job, outcome, runMs) => settler.settle(job, outcome, runMs),
    wake: (fromStore) => (fromStore ? claimer.pull() : claimer.pump()),
    // Ready here and not held back by flow control: a poll with waitMs 0 waits for their claim.
    readyOf: (type) => (gate.shut(type) || slots.typeFull(type) ? 0 : scheduler.readyOf(type)),
  });
  const slots = createSlots({ concurrency: deps.concurrency, registry, scheduler, gate, pushback, remote, onRoom: () => claimer.wantPull() });
  const settler = createSettler({
    store, scheduler, registry, clock, owner, keepMs, logger, defer, events, mode,
    backoff: deps.backoff,
    ...(deps.random !== undefined && { random: deps.random }),
  });
  const strays = createStrays({
    store, scheduler, clock, owner, logger, mode,
    holding: () => [...attempts.running.keys()],
    quiet: () => claimer.quiet && slots.claiming === 0,
    onSwept: () => {
      notifyIdle();
      claimer.pump();
    },
  });
  /** The limits claims weigh, read from the registry again only when it changed (a reload of the types file). */
  let limits: FlowLimits | undefined;
  let limitsAsOf = -1;
  const flowLimits = (): FlowLimits => {
    if (limits === undefined || limitsAsOf !== registry.version) {
      limits = limitsOf(registry);
      limitsAsOf = registry.version;
    }
    return limits;
  };
  const claimer = createClaimer({
    store, scheduler, clock, owner, leaseMs, events, defer, mode, slots, gate, strays, notifyIdle,
    limits: flowLimits,
    agingMs: deps.agingMs,
    concurrency: deps.concurrency,
    start: (claimed, readyAtById, sentAt) => attempts.start(claimed, readyAtById, sentAt),
  });
  // Claim ahead, sized from a moving average of local handlers' run times (ms).
  const claimAheadMs = deps.claimAheadMs ?? 0;
  let meanRunMs = -1;
  const observeRunMs = (ms: number) => {
    meanRunMs = meanRunMs < 0 ? ms : meanRunMs * 0.9 + ms * 0.1;
    if (claimAheadMs <= 0 || mode.stopping) return;
    slots.setAhead(Math.min(MAX_AHEAD, Math.floor((deps.concurrency * claimAheadMs) / Math.max(meanRunMs, MIN_RUN_MS))));
  };
  const attempts = createAttempts({
    registry, clock, keepMs, events, slots, settler, mode, pushback, remote, notifyIdle, pump: claimer.pump,
    agingMs: deps.agingMs, observeRunMs,
    unknownType: (type) => slots.unknownType(type),
    keyFreed: (type, key) => {
      if (registry.get(type)?.flow?.keyConcurrency !== undefined) scheduler.releaseKey(type, key);
    },
  });
  const waiters = createWaiters({
    idle: () => attempts.running.size === 0 && slots.claiming === 0,
    holds: (id, upTo) => claimer.outUpTo(upTo) || attempts.ending(id),
  });

  /** A claim landed, an attempt started or went, a slot was given back: a sweep may go, waiters may be answered. */
  function notifyIdle(): void {
    strays.maybeSweep();
    waiters.notify();
  }

  async function heartbeat(): Promise<void> {
    if (attempts.running.size === 0) return;
    // Remote workers extend their own jobs' leases (remote.ts).
    const refs: { id: number; attempt: number }[] = [];
    for (const r of attempts.running.values()) if (!remote.holds(r.job.id)) refs.push({ id: r.job.id, attempt: r.job.attempts });
    if (refs.length === 0) return;
    try {
      const ok = await store.extendLeases(refs, owner, clock() + leaseMs);
      refs.forEach((ref, i) => {
        if (ok[i]) return;
        const r = attempts.running.get(ref.id);
        if (r && r.job.attempts === ref.attempt && !r.ended) {
          logger.warn("lease lost; aborting the attempt", { id: ref.id, attempt: ref.attempt });
          attempts.interrupt(r, new LeaseLostError());
        }
      });
    } catch (err) {
      logger.warn("lease heartbeat failed", { err: errorMessage(err) });
    }
  }

  return {
    pump: claimer.pump,
    heartbeat,
    reserve: claimer.reserve,
    startReserved: claimer.startReserved,
    unreserve: claimer.unreserve,
    cancel: attempts.cancel,
    cancelWaiting: attempts.cancelWaiting,
    /**
     * Resolves once the claims out now have landed and `id`'s store move (if any) has been made; a
     * cancel waits for it before it looks at the row.
     */
    settled(id: number): Promise<void> {
      return waiters.settled(id, claimer.seq);
    },
    pull: claimer.pull,
    adopt: claimer.adopt,
    /** Remote workers of pull types: their long-polls and their complete, fail and heartbeat moves. */
    remote,
    recheck: claimer.recheck,
    /** The types paused in the store now: none of their jobs is claimed here (the store refuses them too). */
    setPaused: gate.setPaused,
    /** Whether flow control keeps jobs of `type` from starting here now (paused, or held back for a while). */
    shut: (type: string) => gate.shut(type),
    /**
     * Why a job waits, as this node sees it: null while it runs; for a job that is due, the first
     * of: its type paused, its target's breaker open, its type's rate, its key's hold, its type's
     * own concurrency (or the lower one its target's pushback allows now), for a pull type no worker
     * asking for it, else busy workers.
     */
    waitingFor(job: Pick<JobView, "state" | "type" | "key" | "attempts" | "throttles">): WaitReason | null {
      if (job.state === "inflight") return null;
      if (job.state === "scheduled") return job.attempts > 0 || job.throttles > 0 ? "backoff" : "scheduled";
      const shut = gate.why(job.type);
      if (shut === "paused") return "paused";
      if (registry.get(job.type) === undefined) return "no_handler";
      if (shut === "breaker_open") return "breaker_open";
      if (shut === "held") return "rate_limit";
      const keyHold = job.key === null ? null : scheduler.keyHeld(job.type, job.key);
      if (keyHold !== null && keyHold !== "paused") return keyHold;
      if (slots.typeFull(job.type)) return "type_concurrency";
      if (registry.get(job.type)?.pull && remote.waitingFor(job.type) === 0) return "awaiting_worker";
      return "workers_busy";
    },
    /** Why flow control keeps jobs of `type` from starting here now ("paused", "held", "breaker_open"), or null. */
    whyShut: (type: string) => gate.why(type),
    /** What pushback from `type`'s target allows on this node now: its effective concurrency and breaker. */
    flowStatus: (type: string): FlowStatus => pushback.status(type),
    start() {
      mode.enter("running");
      heartbeatTimer = setInterval(() => void heartbeat(), Math.max(100, Math.floor(leaseMs / 3)));
      claimer.pump();
    },
    /**
     * Stop claiming, let running attempts finish until the grace deadline, then abort the rest
     * and hand their rows straight back to pending. Resolves when nothing is left in flight.
     */
    async stop(graceMs: number): Promise<{ finished: number; released: number }> {
      if (!mode.stopping) mode.enter("stopping"); // ends a back-off's timer
      remote.stop(); // waiting polls are answered now; jobs already out may still finish within the grace
      slots.setAhead(0);
      const neverStarted = await attempts.releaseWaiting(); // jobs claimed ahead: back to pending at once, uncounted
      const before = attempts.running.size;
      let graceTimer: ReturnType<typeof setTimeout> | undefined;
      const graceOver = new Promise<"grace">((r) => (graceTimer = setTimeout(() => r("grace"), graceMs)));
      const how = await Promise.race([waiters.whenIdle().then(() => "idle" as const), graceOver]);
      clearTimeout(graceTimer);
      let interrupted = 0;
      if (how === "grace") {
        if (mode.current !== "hardStop") mode.enter("hardStop"); // moves now give up SETTLE_AFTER_GRACE_MS later
        // Attempts whose handler already returned keep their result and are settled; the rest end now.
        const stuck = [...attempts.running.values()].filter((r) => !r.ended);
        for (const r of stuck) attempts.interrupt(r, new ShutdownError());
        interrupted = stuck.length;
        await attempts.release(stuck.map((r) => r.job));
        // Moves of attempts that already ended are retried until the store answers or gives up.
        await waiters.whenIdle();
      }
      // Leases a lost answer may have left here go back now, not after a restart that would count them.
      await strays.idle();
      if (strays.owed) await strays.sweep();
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      heartbeatTimer = null;
      gate.stop();
      await settler.drain();
      return { finished: before - interrupted, released: neverStarted + interrupted };
    },
    get busy() {
      return slots.active;
    },
    /** Jobs claimed ahead that wait here for a slot. */
    get waitingForSlot() {
      return slots.queued;
    },
    get inflight() {
      return attempts.running.size + slots.claiming;
    },
  };
}

export type WorkerPool = ReturnType<typeof createWorkerPool>;

/** Most jobs claimed ahead of free slots at once. */
const MAX_AHEAD = 1000;
/** Run times are counted as at least this (ms), so a burst of instant handlers sizes the line by MAX_AHEAD, not by a division by ~0. */
const MIN_RUN_MS = 0.01;

/** The rate and per-key limits of the registry's types, for claims to weigh. */
function limitsOf(registry: HandlerRegistry): FlowLimits {
  const limits = new Map<string, FlowLimit>();
  for (const type of registry.types()) {
    const flow = registry.get(type)!.flow;
    if (!isLimited(flow)) continue;
    const rate = claimRate(flow!);
    limits.set(type, {
      ...(rate !== undefined && { rate }),
      ...(flow!.keyConcurrency !== undefined && { keyConcurrency: flow!.keyConcurrency }),
      ...(flow!.keyRate !== undefined && { keyRate: flow!.keyRate }),
    });
  }
  return limits;
}
