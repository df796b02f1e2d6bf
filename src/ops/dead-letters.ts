// dead-letters.ts: operator actions on dead jobs (list, retry, delete, one at a time or a whole
// type in bounded chunks). Retried jobs are handed to `onRetried` for the scheduler. No SQL here;
// store faults propagate as they are (the HTTP app answers them with 503).
import type { Logger } from "../logger.ts";
import type { Admin } from "../store/store.ts";
import type { DeadQuery, JobView, PendingEntry } from "../store/rows.ts";
import type { Clock } from "../clock.ts";

export interface DeadLettersDeps {
  store: Pick<Admin, "listDead" | "retryDead" | "retryDeadOfType" | "deleteDead" | "deleteDeadOfType">;
  clock: Clock;
  /** Jobs just moved back to pending: push them into the scheduler. */
  onRetried: (entries: PendingEntry[]) => void;
  logger: Logger;
  /** Rows moved per transaction by the bulk actions (so no lock is held for long). */
  chunkSize?: number;
}

export interface DeadLetters {
  list(query: DeadQuery): Promise<JobView[]>;
  /** Dead → pending (attempts 0, due now); false when the job is not dead. */
  retry(id: number): Promise<boolean>;
  /** false when the job is not dead. */
  remove(id: number): Promise<boolean>;
  /** Every job of `type` that was dead when the call began, in chunks; returns how many. */
  retryType(type: string): Promise<number>;
  purgeType(type: string): Promise<number>;
}

/** Rows per transaction of a bulk action. */
export const DEAD_CHUNK = 1000;

export function createDeadLetters(deps: DeadLettersDeps): DeadLetters {
  const { store, clock } = deps;
  const chunk = deps.chunkSize ?? DEAD_CHUNK;

  return {
    list: (query) => store.listDead(query),

    async retry(id) {
      const back = await store.retryDead([id], clock());
      deps.onRetried(back);
      return back.length === 1;
    },

    remove: async (id) => (await store.deleteDead([id]))[0] === true,

    async retryType(type) {
      // Jobs that die again while this runs failed after `startedAt` and are left dead.
      const startedAt = clock();
      let total = 0;
      for (;;) {
        const back = await store.retryDeadOfType(type, startedAt, chunk);
        deps.onRetried(back);
        total += back.length;
        if (back.length < chunk) break;
      }
      if (total > 0) deps.logger.info("retried dead jobs", { type, count: total });
      return total;
    },

    async purgeType(type) {
      let total = 0;
      for (;;) {
        const n = await store.deleteDeadOfType(type, chunk);
        total += n;
        if (n < chunk) break;
      }
      if (total > 0) deps.logger.info("deleted dead jobs", { type, count: total });
      return total;
    },
  };
}
