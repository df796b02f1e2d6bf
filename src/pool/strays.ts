// strays.ts: hands back leases a lost answer may have left with this node (a claim, pull or leased
// insert whose reply never came): rows inflight for this owner that no attempt here runs. It owns the
// debt and the sweep, never the claims: it only waits until none is out.
import type { Logger } from "../logger.ts";
import type { Scheduler } from "../queue/scheduler.ts";
import type { JobMoves } from "../store/store.ts";
import type { PoolModeSwitch } from "./mode.ts";
import type { Clock } from "../clock.ts";

export interface StraysDeps {
  store: Pick<JobMoves, "releaseStrays">;
  scheduler: Pick<Scheduler, "add">;
  clock: Clock;
  owner: string;
  logger: Logger;
  mode: Pick<PoolModeSwitch, "current" | "enter" | "backOff" | "storeAnswered">;
  /** Ids of the attempts this pool holds: their rows are not strays. */
  holding: () => number[];
  /** No claim, pull or leased insert is out (so none of their rows is on its way to a worker). */
  quiet: () => boolean;
  /** A sweep ended, either way: tell the waiters and claim. */
  onSwept: () => void;
}

export function createStrays(deps: StraysDeps) {
  const { store, scheduler, clock, owner, logger, mode } = deps;
  /**
   * A hand-back is owed. Until it is made, claims and direct starts wait, so the sweep never meets a
   * row on its way to a worker; the rows keep their attempt uncounted (none of it ran).
   */
  let owed = false;
  /** A sweep's statement is out (in the sweeping mode, or one that stop() began or met). */
  let out = false;
  /** Ids of lost claims already put back in the heap: the sweep does not push them a second time. */
  const requeued = new Set<number>();
  /** The sweep out now, if any (stop() waits for it before making the last one). */
  let current: Promise<void> | null = null;

  /** Hand back every row of this owner that no attempt here holds; on failure the debt stays and the pool backs off. */
  function sweep(): Promise<void> {
    current = sweepOnce().finally(() => (current = null));
    return current;
  }

  async function sweepOnce(): Promise<void> {
    owed = false;
    out = true;
    if (mode.current === "running") mode.enter("sweeping");
    const requeuedNow = new Set(requeued);
    try {
      const back = await store.releaseStrays(owner, deps.holding(), clock());
      const now = clock();
      for (const e of back) if (!requeuedNow.has(e.id)) scheduler.add(e.id, e.priority, e.runAt, now, e.type, e.key);
      for (const id of requeuedNow) requeued.delete(id);
      if (back.length > 0) logger.info("handed back jobs leased by a claim or insert whose answer was lost", { count: back.length });
      mode.storeAnswered();
    } catch (err) {
      owed = true;
      mode.backOff("handing back stray leases failed", err);
    } finally {
      out = false;
      if (mode.current === "sweeping") mode.enter("running");
    }
    deps.onSwept();
  }

  return {
    /** Resolves when no sweep is out. */
    idle: (): Promise<void> => current ?? Promise.resolve(),
    get owed(): boolean {
      return owed;
    },
    get out(): boolean {
      return out;
    },
    /** A lost answer may have leased rows here that nobody runs. */
    owe(): void {
      owed = true;
    },
    /** A lost claim's id went back into the heap already: the sweep must not push it again. */
    requeue(id: number): void {
      requeued.add(id);
    },
    /**
     * Set the sweep going once it is owed, the pool is running (not backing off: a failed sweep is
     * retried when its back-off ends) and nothing is out. stop() makes the last one itself.
     */
    maybeSweep(): void {
      if (!owed || mode.current !== "running" || !deps.quiet()) return;
      void sweep();
    },
    sweep,
  };
}

export type Strays = ReturnType<typeof createStrays>;
