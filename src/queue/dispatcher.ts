// dispatcher.ts: the way in. A submit is committed to the store (group commit) first and pushed
// into the scheduler second; the caller's promise resolves only after the commit. A submit that
// fails gets the store's fault as it is (errors.ts): unavailable (nothing stored), outcome unknown,
// or its own data refused (the batcher retries the others apart).
import { createBatcher } from "./batcher.ts";
import { JobQueueError, StoreOutcomeUnknownError, errorMessage } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Scheduler } from "./scheduler.ts";
import type { Cluster, JobMoves, StoreInfo } from "../store/store.ts";
import type { ClaimedJob, InsertResult, NewJob } from "../store/rows.ts";
import type { Clock } from "../clock.ts";

/** The worker pool's side of starting a job in its insert's own transaction. */
export interface DirectStart {
  /** This node's owner name and lease length, written into the leased rows. */
  owner: string;
  leaseMs: number;
  reserve(types: string[]): boolean[];
  startReserved(jobs: ClaimedJob[]): void;
  unreserve(types: string[]): void;
}

/** What the pool does when an insert's answer was lost: its rows may be in the store unknown to this node. */
export interface LostInserts {
  /**
   * Rows may be pending without a heap entry (pull them from the store) or, when `leased`, in
   * inflight leased to this node with nobody running them (hand them back, their attempt uncounted).
   */
  recheck(leased: boolean): void;
}

export interface DispatcherDeps {
  /** The submit move, the hint to other nodes, and whether calls block (see StoreInfo). */
  store: Pick<JobMoves, "add"> & Pick<Cluster, "announce"> & Pick<StoreInfo, "blocking">;
  scheduler: Scheduler;
  clock: Clock;
  logger: Logger;
  onSubmitted: (jobs: NewJob[]) => void;
  /** Most jobs per insert statement. */
  maxBatch?: number;
  /**
   * Most bytes of submitted jobs (payload text, plus JOB_OVERHEAD_BYTES each) held while they wait
   * for the store to commit them; a submit beyond it is refused with 503 overloaded, so a stalled
   * store cannot make submits pile up in memory. 0: no limit.
   */
  maxPendingBytes?: number;
  /**
   * When given, due jobs submitted while this node has idle slots and nothing queued are inserted
   * already claimed (one commit instead of an insert and a claim) and start at once.
   */
  direct?: DirectStart;
  lost?: LostInserts;
}

/**
 * Jobs an insert must carry to go out while another is out (see the inserts' batcher). Single-job
 * submits on 64 connections, interleaved seven rounds each: 0 (any) was worse than 128 (last
 * measured 5.7k vs 6.9k jobs/s), 8 gave 12.0k, 16 gave 13.2k, 128 gave 11.5k: at 128 a
 * second insert never went out for single submits, so the next ~30 waited out a whole commit
 * behind the one out; at 16 they go once a commit's worth has gathered, and smaller ones still
 * wait and leave together.
 */
export const OVERLAP_MIN_JOBS = 16;

/** What one job costs in memory besides its payload text, for the pending-bytes bound. */
export const JOB_OVERHEAD_BYTES = 256;

/** The bytes a submit holds until its commit: its payloads' text and a fixed overhead per job. */
export function pendingBytesOf(jobs: readonly NewJob[]): number {
  let bytes = 0;
  for (const j of jobs) bytes += j.payload.length + (j.idempotencyKey?.length ?? 0) + JOB_OVERHEAD_BYTES;
  return bytes;
}

export function createDispatcher(deps: DispatcherDeps) {
  const { store, scheduler, clock } = deps;
  const maxPendingBytes = deps.maxPendingBytes ?? 0;
  /** Bytes of the submits waiting for their commit now (see maxPendingBytes). */
  let pendingBytes = 0;
  // One request's jobs travel together, so a request stays all-or-nothing inside a shared commit.
  const inserts = createBatcher<NewJob[], { ids: InsertResult[]; now: number }>({
    maxBatch: deps.maxBatch ?? 5000,
    weight: (jobs) => jobs.length,
    defer: store.blocking ? (fn) => void setImmediate(fn) : undefined,
    // PostgreSQL overlaps commits (and syncs their WAL together): keep a few inserts out at once,
    // but only when they are heavy. Every commit waits for a WAL flush, so small submits leave
    // together behind the one out (one commit) instead of each taking a commit of its own.
    maxInFlight: store.blocking ? 1 : 4,
    overlapMinWeight: OVERLAP_MIN_JOBS,
    run: async (requests) => {
      const now = clock();
      const ids = await store.add(requests.flat(), now);
      const out: Array<{ ids: InsertResult[]; now: number }> = [];
      let at = 0;
      for (const r of requests) {
        out.push({ ids: ids.slice(at, at + r.length), now });
        at += r.length;
      }
      return out;
    },
  });

  /**
   * Throws 503 overloaded when `bytes` more would take the submits waiting for their commit past
   * maxPendingBytes (one submit alone is always let through, however large).
   */
  function admit(bytes: number): void {
    if (maxPendingBytes <= 0 || pendingBytes === 0 || pendingBytes + bytes <= maxPendingBytes) return;
    throw new JobQueueError(
      "overloaded",
      `${pendingBytes} bytes of submits are waiting for the job store to commit them (at most ${maxPendingBytes}): retry later`,
      503,
      { "retry-after": "1" },
    );
  }

  /**
   * Lease the due jobs the pool has idle slots for, most urgent first (highest priority, then
   * input order, as the heap would pop them). Returns the jobs to insert and which were leased.
   */
  function leaseIdle(jobs: NewJob[], now: number): { rows: NewJob[]; leased: boolean[] } {
    const leased = jobs.map(() => false);
    const direct = deps.direct;
    if (!direct) return { rows: jobs, leased };
    // Due, and not already past its deadline (a library caller's job may be): that one is left to
    // the claim, which dead-letters it as expired instead of starting it.
    const due = jobs.map((_, i) => i).filter((i) => jobs[i]!.runAt <= now && (jobs[i]!.startBy ?? Infinity) >= now);
    if (due.length === 0) return { rows: jobs, leased };
    due.sort((a, b) => jobs[b]!.priority - jobs[a]!.priority || a - b);
    const granted = direct.reserve(due.map((i) => jobs[i]!.type));
    if (!granted.includes(true)) return { rows: jobs, leased };
    const lease = { owner: direct.owner, until: now + direct.leaseMs };
    const rows = jobs.slice();
    due.forEach((i, n) => {
      if (!granted[n]) return;
      leased[i] = true;
      rows[i] = { ...jobs[i]!, lease };
    });
    return { rows, leased };
  }

  return {
    /**
     * Commit jobs and schedule the new ones (a duplicate's idempotency key is held by the job it
     * names, which is scheduled already); throws the store's fault (errors.ts) when it fails.
     */
    async submit(jobs: NewJob[]): Promise<InsertResult[]> {
      const bytes = pendingBytesOf(jobs);
      admit(bytes);
      pendingBytes += bytes;
      const { rows, leased } = leaseIdle(jobs, clock());
      let ids: InsertResult[];
      let insertedAt: number;
      try {
        ({ ids, now: insertedAt } = await inserts.add(rows));
      } catch (err) {
        const leasedTypes = jobs.filter((_, i) => leased[i]).map((j) => j.type);
        deps.direct?.unreserve(leasedTypes);
        if (err instanceof StoreOutcomeUnknownError) deps.lost?.recheck(leasedTypes.length > 0);
        deps.logger.warn("submit failed", { err: errorMessage(err), jobs: jobs.length });
        throw err;
      } finally {
        pendingBytes -= bytes;
      }
      const now = clock();
      const started: ClaimedJob[] = [];
      const unused: string[] = [];
      const created = jobs.filter((j, i) => {
        const r = ids[i]!;
        if (leased[i] && !r.held) {
          if (r.duplicate) unused.push(j.type);
          else {
            started.push({
              id: r.id, type: j.type, payload: j.payload, priority: j.priority, attempts: 1, maxAttempts: j.maxAttempts,
              timeoutMs: j.timeoutMs, runAt: j.runAt, createdAt: insertedAt, lastError: null,
              key: j.key ?? null, startBy: j.startBy ?? null, throttles: 0, trace: j.trace ?? null,
            });
          }
        } else {
          // A leased job the store inserted pending instead (its type is paused) waits like any other.
          if (leased[i]) unused.push(j.type);
          if (!r.duplicate) scheduler.add(r.id, j.priority, j.runAt, now, j.type, j.key ?? null);
        }
        return !r.duplicate;
      });
      if (deps.direct) {
        deps.direct.unreserve(unused);
        if (started.length > 0) deps.direct.startReserved(started);
      }
      // Wake idle nodes sharing the database (a hint; polling is the backstop).
      store.announce(now).catch((err) => deps.logger.debug("announce failed", { err: errorMessage(err) }));
      deps.onSubmitted(created);
      return ids;
    },
    drain: () => inserts.drain(),
    /** Refuse a submit of about `bytes` before its body is read, as submit() would after (see admit). */
    admit,
    /** Bytes of submits waiting for their commit (see maxPendingBytes). */
    get pendingBytes() {
      return pendingBytes;
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
