// reaper.ts: the maintenance loop. Hands inflight rows whose lease expired back to pending and to
// this process's scheduler, so a dead worker's jobs run again without a restart; dead-letters pending
// jobs past their start-by deadline (paused or backlogged types' too); prunes expired completed
// records in short batches; then calls `afterTick` (the queue uses it to look for work its heap does
// not hold). No SQL here.
import { errorMessage } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { Recovery } from "../store/store.ts";
import type { ExpiredJob, PendingEntry } from "../store/rows.ts";
import type { Clock } from "../clock.ts";

export interface ReaperDeps {
  store: Pick<Recovery, "reapExpired" | "expirePending" | "pruneCompleted" | "pruneBuckets">;
  clock: Clock;
  intervalMs: number;
  /** Rows moved per statement; a tick repeats while full batches come back. */
  batchSize?: number;
  onRecovered: (entries: PendingEntry[]) => void;
  /** Pending jobs past their deadline were moved to dead: forget them. */
  onExpired?: (jobs: ExpiredJob[]) => void;
  /**
   * Completed records are pruned when they expire, in batches of batchSize; records written before
   * records carried an expiry expire this long after they finished (0 or unset: at once).
   */
  keepCompletedMs?: number;
  /** Runs after every tick, whatever it found. */
  afterTick?: () => void | Promise<void>;
  logger: Logger;
}

export function createReaper(deps: ReaperDeps) {
  const batch = deps.batchSize ?? 1000;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = true;

  async function tick(now: number): Promise<{ recovered: number; expired: number; pruned: number }> {
    let recovered = 0;
    for (;;) {
      const back = await deps.store.reapExpired(now, batch);
      if (back.length > 0) deps.onRecovered(back);
      recovered += back.length;
      if (back.length < batch) break;
    }
    if (recovered > 0) deps.logger.info("reaped expired leases", { recovered });
    // Jobs whose deadline passed while they waited leave now, one short transaction per batch,
    // whether their type is paused or just behind a backlog.
    let expired = 0;
    for (;;) {
      const gone = await deps.store.expirePending(now, batch);
      if (gone.length > 0) deps.onExpired?.(gone);
      expired += gone.length;
      if (gone.length < batch) break;
    }
    if (expired > 0) deps.logger.info("dead-lettered jobs past their deadline", { expired });
    // Completed records expire on their own time, whatever --keep-completed says now; one short
    // transaction per batch, so pruning a big backlog never holds locks for long.
    let pruned = 0;
    for (;;) {
      const n = await deps.store.pruneCompleted(now, batch, deps.keepCompletedMs ?? 0);
      pruned += n;
      if (n < batch) break;
    }
    if (pruned > 0) deps.logger.debug("pruned completed records", { pruned });
    // Per-key rate buckets that are full again go (one batch a tick: they only cost space).
    await deps.store.pruneBuckets(now, batch);
    await deps.afterTick?.();
    return { recovered, expired, pruned };
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick(deps.clock())
        .catch((err) => deps.logger.warn("reaper tick failed", { err: errorMessage(err) }))
        .finally(() => {
          running = null;
          schedule();
        });
    }, deps.intervalMs);
  }

  return {
    tick,
    start() {
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
