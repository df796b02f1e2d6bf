// stats.ts: what GET /stats reports: job counts by state and type and the oldest ready job's age
// (from the store, so they cover every process on the database), and completions in the last
// minute (this process). No SQL here; store faults propagate as they are (the HTTP app answers
// them with 503).
import type { RateWindow } from "../queue/rate-window.ts";
import type { Admin } from "../store/store.ts";
import type { Clock } from "../clock.ts";

export interface StatsDeps {
  store: Pick<Admin, "stats">;
  clock: Clock;
  /** Completions recorded by this process's workers. */
  completions: RateWindow;
}

export interface StateCounts {
  pending: number;
  scheduled: number;
  inflight: number;
  dead: number;
  /** Completed records still kept (--keep-completed). */
  completed: number;
}

export interface Stats {
  jobs: StateCounts;
  types: Record<string, StateCounts>;
  /** Seconds the longest-waiting due job has waited, or null when none is waiting. */
  oldestReadyAgeSeconds: number | null;
  /** Jobs this process completed in the last 60 seconds. */
  completedLastMinute: number;
}

export function createStats(deps: StatsDeps) {
  return {
    async read(): Promise<Stats> {
      const now = deps.clock();
      const raw = await deps.store.stats(now);
      const jobs: StateCounts = { pending: 0, scheduled: 0, inflight: 0, dead: 0, completed: 0 };
      const types: Record<string, StateCounts> = {};
      for (const { type, ...counts } of raw.types) {
        types[type] = counts;
        for (const k of Object.keys(jobs) as (keyof StateCounts)[]) jobs[k] += counts[k];
      }
      return {
        jobs,
        types,
        oldestReadyAgeSeconds: raw.oldestDueAt === null ? null : Math.max(0, now - raw.oldestDueAt) / 1000,
        completedLastMinute: deps.completions.count(now),
      };
    },
  };
}
