// settler.ts: the store move that ends each attempt, group-committed and fenced by its claim: complete,
// retry (when backoff.ts says), throttle (the target asked to wait: the attempt not used) or bury, a
// cancelled attempt's removal, the hand-back at shutdown. It retries a failing store until it answers
// (bounded after a hard stop). It runs no handler and claims nothing.
import { backoffMs, storeRetryMs, type BackoffPolicy } from "../queue/backoff.ts";
import { createBatcher } from "../queue/batcher.ts";
import { AttemptTimeoutError, LeaseExpiredError, StoreOutcomeUnknownError, ThrottledError, errorMessage, failureCodes } from "../errors.ts";
import { DEFAULT_MAX_THROTTLES } from "../config/flow-policy.ts";
import type { HandlerRegistry } from "../handlers/handler.ts";
import type { Logger } from "../logger.ts";
import type { Scheduler } from "../queue/scheduler.ts";
import type { JobMoves, StoreInfo } from "../store/store.ts";
import type { AttemptEnd, AttemptOutcome, BuryMove, ClaimRef, ClaimedJob, CompleteMove, RetryMove, ThrottleMove } from "../store/rows.ts";
import type { WorkerEvents } from "./pool.ts";
import type { Clock } from "../clock.ts";

/** How an attempt ended. A failure keeps what ended it (an interrupt's reason is one of errors.ts's classes). */
export type Outcome = { ok: true; result: string | null } | { ok: false; error: string; permanent: boolean; cause: unknown };

export interface SettlerDeps {
  store: Pick<JobMoves, "complete" | "retry" | "throttle" | "bury" | "completeCancelled" | "release"> & Pick<StoreInfo, "blocking">;
  scheduler: Pick<Scheduler, "add">;
  registry: Pick<HandlerRegistry, "get">;
  clock: Clock;
  owner: string;
  /** Completed jobs leave a record that expires this long after; 0: none. */
  keepMs: number;
  backoff: BackoffPolicy;
  random?: () => number;
  events: Pick<WorkerEvents, "completed" | "failed" | "fenced" | "cancelled" | "throttled">;
  logger: Logger;
  /** How a flush of moves is scheduled after the first arrives (see pool.ts). */
  defer: (fn: () => void) => void;
  /** When the shutdown grace ran out (null before): moves then give up SETTLE_AFTER_GRACE_MS later. */
  mode: { readonly hardStopAt: number | null };
}

/** The record of an attempt that ended without completing its job, from what ended it. */
function attemptEnd(cause: unknown, endedAt: number, throttled = false): AttemptEnd {
  const outcome: AttemptOutcome = throttled ? "throttled"
    : cause instanceof AttemptTimeoutError ? "timeout"
    : cause instanceof LeaseExpiredError ? "lease_expired"
    : "failed";
  return { outcome, endedAt, ...failureCodes(cause) };
}

/** Whether a failed attempt (not a throttle the job still has room for) sends its job to dead: failed for good, or out of attempts. */
export function buriedAfter(job: Pick<ClaimedJob, "attempts" | "maxAttempts">, outcome: { permanent: boolean }): boolean {
  return outcome.permanent || job.attempts >= job.maxAttempts;
}

/** How a fenced move ended (see untilStored). */
export type SettleResult = "took" | "fenced" | "unsure" | "abandoned";

/** How long past the shutdown grace the moves of finished attempts keep trying a failing store. */
const SETTLE_AFTER_GRACE_MS = 5000;

export function createSettler(deps: SettlerDeps) {
  const { store, scheduler, registry, clock, events, logger, keepMs, defer } = deps;
  // Group commit for the ways an attempt ends: moves that arrive while a flush is out share the next.
  // One flush of completions out at a time, not four: every commit waits for a WAL flush, and with
  // submits committing beside them (jobs started as they are submitted), four smaller completion
  // commits mostly queued on PostgreSQL's WAL lock. Interleaved (bun bench/ab.ts, four rounds):
  // single submits 9.1k -> 12.0k jobs/s, the preloaded drain 50.1k -> 56.3k. A handler's slot is
  // free before its completion is stored, so bigger batches hold no worker.
  const completes = createBatcher<CompleteMove, boolean>({
    run: (moves) => store.complete(moves, keepMs > 0 ? { finishedAt: clock(), expiresAt: clock() + keepMs } : undefined),
    maxBatch: 1000, defer,
  });
  const retries = createBatcher<RetryMove, boolean>({ run: (m) => store.retry(m), maxBatch: 1000, defer });
  const throttles = createBatcher<ThrottleMove, boolean>({ run: (m) => store.throttle(m), maxBatch: 1000, defer });
  const burials = createBatcher<BuryMove, boolean>({ run: (m) => store.bury(m, clock()), maxBatch: 1000, defer });
  const removals = createBatcher<ClaimRef, boolean>({ run: (refs) => store.completeCancelled(refs), maxBatch: 1000, defer });

  /**
   * Retry a fenced move until the store answers. "took": it took effect; "fenced": the claim was gone
   * (the reaper or a cancel got there first); "unsure": it reported no effect after an earlier try's
   * answer was lost, which may have been the try that took effect; "abandoned": past the shutdown
   * grace a move keeps trying for SETTLE_AFTER_GRACE_MS more, then is left to the lease (the job
   * runs again).
   */
  async function untilStored(move: string, attempt: () => Promise<boolean>): Promise<SettleResult> {
    let lost = false;
    for (let failures = 0; ; failures++) {
      try {
        if (await attempt()) return "took";
        if (lost) return "unsure";
        events.fenced(move);
        return "fenced";
      } catch (err) {
        if (err instanceof StoreOutcomeUnknownError) lost = true;
        const hardStopAt = deps.mode.hardStopAt;
        if (hardStopAt !== null && clock() - hardStopAt > SETTLE_AFTER_GRACE_MS) {
          logger.warn(`${move} abandoned at shutdown: the store did not answer; the lease returns the job`, { err: errorMessage(err) });
          return "abandoned";
        }
        const delay = storeRetryMs(failures);
        logger.warn(`${move} failed; retrying`, { err: errorMessage(err), delayMs: delay });
        await Bun.sleep(delay);
      }
    }
  }

  return {
    /**
     * The move of an attempt that ended by itself or by a timeout: done → complete; failed with
     * attempts left → retry after backoff.ts's delay (and back into the heap); throttled by the target
     * with throttles left → throttle (back into the heap, the attempt not used); failed for good or
     * out of attempts → bury. Resolves when the move has landed (or was given up at a hard stop), with how.
     */
    async settle(job: ClaimedJob, outcome: Outcome, runMs: number): Promise<SettleResult> {
      if (outcome.ok) {
        // runMs is kept only with a completed record (--keep-completed), with the node that ran it.
        const move: CompleteMove = { id: job.id, attempt: job.attempts, result: outcome.result, runMs };
        const how = await untilStored("complete", () => completes.add(move));
        if (how === "took" || how === "unsure") events.completed(job.type, runMs);
        return how;
      }
      const ref = { id: job.id, attempt: job.attempts };
      const own = registry.get(job.type);
      const policy = own?.backoff === undefined ? deps.backoff : { ...deps.backoff, ...own.backoff };
      // The target asked to be called again later: wait as long as it said (at most the backoff cap)
      // without using the attempt, while the job has throttles left; then it is an ordinary failure.
      if (outcome.cause instanceof ThrottledError && !outcome.permanent && job.throttles < (own?.flow?.maxThrottles ?? DEFAULT_MAX_THROTTLES)) {
        const delayMs = Math.min(outcome.cause.delayMs, policy.capMs);
        const runAt = clock() + delayMs;
        events.throttled?.(job.type, runMs, delayMs);
        const end = attemptEnd(outcome.cause, clock(), true);
        const how = await untilStored("throttle", () => throttles.add({ ...ref, runAt, error: outcome.error, end }));
        if (how === "took" || how === "unsure") scheduler.add(job.id, job.priority, runAt, clock(), job.type, job.key);
        return how;
      }
      const dead = buriedAfter(job, outcome);
      events.failed(job.type, runMs, dead ? "dead" : "retry");
      const end = attemptEnd(outcome.cause, clock());
      if (dead) return untilStored("bury", () => burials.add({ ...ref, error: outcome.error, end }));
      const runAt = clock() + backoffMs(job.attempts, policy, deps.random);
      // "unsure": a try whose answer was lost may have moved it; a stale heap entry costs one empty claim.
      const how = await untilStored("retry", () => retries.add({ ...ref, runAt, error: outcome.error, end }));
      if (how === "took" || how === "unsure") {
        scheduler.add(job.id, job.priority, runAt, clock(), job.type, job.key);
      }
      return how;
    },
    /** The end of a cancelled attempt: its row goes, fenced by the claim, and is never retried. */
    async remove(job: ClaimedJob): Promise<SettleResult> {
      const how = await untilStored("cancel", () => removals.add({ id: job.id, attempt: job.attempts }));
      if (how === "took" || how === "unsure") events.cancelled?.(job.type);
      return how;
    },
    /** Shutdown: hand attempts this pool ended itself straight back to pending, uncounted; one try, else the lease returns them. */
    async handBack(jobs: ClaimedJob[]): Promise<void> {
      const refs = jobs.map((j) => ({ id: j.id, attempt: j.attempts }));
      try {
        await store.release(refs, deps.owner, clock(), "shutdown");
      } catch (err) {
        logger.warn("could not hand jobs back at shutdown; their lease returns them", { err: errorMessage(err), count: refs.length });
      }
    },
    /**
     * Jobs no handler ran: straight back to pending, without using an attempt, and into the heap
     * unless `toHeap` is false (a type this node has no handler for: nodes that have one take it);
     * one try, else their leases return them.
     */
    async giveBack(jobs: ClaimedJob[], toHeap = true): Promise<void> {
      try {
        // They never reached a worker: no attempt to record.
        const back = await store.release(jobs.map((j) => ({ id: j.id, attempt: j.attempts })), deps.owner, clock(), null);
        const now = clock();
        if (toHeap) for (const e of back) scheduler.add(e.id, e.priority, e.runAt, now, e.type, e.key);
      } catch (err) {
        logger.warn("could not hand jobs back; their leases return them", { err: errorMessage(err), ids: jobs.map((j) => j.id) });
      }
    },
    /** Resolves when every move queued so far has been flushed. */
    async drain(): Promise<void> {
      await Promise.all([completes.drain(), retries.drain(), throttles.drain(), burials.drain(), removals.drain()]);
    },
  };
}

export type Settler = ReturnType<typeof createSettler>;
