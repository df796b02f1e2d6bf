// pauses.ts: the embedded store's paused job types (jobqueue_paused): pausing, resuming and listing
// them, and the types' rate buckets for GET /types. One process per file, so there is nobody to tell; the claims read the table themselves
// (claim.ts, submit.ts). Nothing here moves a job.
import type { Connection, Part } from "./connection.ts";

export function createPauses({ conn }: { conn: Connection }): Part<"pauseType" | "resumeType" | "pausedTypes" | "rateBuckets" | "pruneBuckets"> {
  const { op, prepare } = conn;
  const add = prepare<never, [type: string, pausedAt: number]>("INSERT INTO jobqueue_paused (type, paused_at) VALUES (?, ?) ON CONFLICT (type) DO NOTHING");
  const remove = prepare<never, [type: string]>("DELETE FROM jobqueue_paused WHERE type = ?");
  const list = prepare<{ type: string }, []>("SELECT type FROM jobqueue_paused ORDER BY type");
  const prune = prepare<never, [now: number, limit: number]>(
    "DELETE FROM jobqueue_buckets WHERE (type, key) IN (SELECT type, key FROM jobqueue_buckets WHERE key <> '' AND tat < ?1 LIMIT ?2)");
  const buckets = prepare<{ type: string; tat: number }, []>("SELECT type, tat FROM jobqueue_buckets WHERE key = '' ORDER BY type");
  return {
    pauseType: op("pauseType", (type, now) => add().run(type, now).changes > 0),
    resumeType: op("resumeType", (type) => remove().run(type).changes > 0),
    pausedTypes: op("pausedTypes", () => list().all().map((r) => r.type)),
    pruneBuckets: op("pruneBuckets", (now, limit) => prune().run(now, limit).changes),
    // One process per file: its clock is the one the claims weigh by.
    rateBuckets: op("rateBuckets", () => {
      const now = Date.now();
      return buckets().all().map((b) => ({ ...b, now }));
    }),
  };
}
