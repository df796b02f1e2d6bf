// dispatcher.ts: the way in. A submit is committed to the store (group commit) first and pushed
// into the scheduler second; the caller's promise resolves only after the commit.
import { createBatcher } from "./batcher.ts";
import { errorMessage, unavailable } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Scheduler } from "./scheduler.ts";
import type { InsertResult, NewJob, Store } from "./store/store.ts";

export interface DispatcherDeps {
  store: Store;
  scheduler: Scheduler;
  clock: () => number;
  logger: Logger;
  onSubmitted: (jobs: NewJob[]) => void;
  /** Most jobs per insert statement. */
  maxBatch?: number;
}

export function createDispatcher(deps: DispatcherDeps) {
  const { store, scheduler, clock } = deps;
  // One request's jobs travel together, so a request stays all-or-nothing inside a shared commit.
  const inserts = createBatcher<NewJob[], InsertResult[]>({
    maxBatch: deps.maxBatch ?? 5000,
    weight: (jobs) => jobs.length,
    defer: store.blocking ? (fn) => void setImmediate(fn) : undefined,
    // PostgreSQL overlaps commits (and syncs their WAL together): keep a few inserts out at once.
    maxInFlight: store.blocking ? 1 : 4,
    run: async (requests) => {
      const ids = await store.insertKeyed(requests.flat(), clock());
      const out: InsertResult[][] = [];
      let at = 0;
      for (const r of requests) {
        out.push(ids.slice(at, at + r.length));
        at += r.length;
      }
      return out;
    },
  });

  return {
    /**
     * Commit jobs and schedule the new ones (a duplicate's idempotency key is held by the job it
     * names, which is scheduled already); throws a 503 JobQueueError when the store fails.
     */
    async submit(jobs: NewJob[]): Promise<InsertResult[]> {
      let ids: InsertResult[];
      try {
        ids = await inserts.add(jobs);
      } catch (err) {
        deps.logger.warn("submit failed: store unavailable", { err: errorMessage(err) });
        throw unavailable("the job store is unavailable; nothing was stored, retry later");
      }
      const now = clock();
      const created = jobs.filter((j, i) => {
        const r = ids[i]!;
        if (!r.duplicate) scheduler.add(r.id, j.priority, j.runAt, now, j.type);
        return !r.duplicate;
      });
      // Wake idle nodes sharing the database (a hint; polling is the backstop).
      store.announce(now).catch((err) => deps.logger.debug("announce failed", { err: errorMessage(err) }));
      deps.onSubmitted(created);
      return ids;
    },
    drain: () => inserts.drain(),
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
