// pauses.ts: the PostgreSQL store's paused job types (jobqueue_paused): pausing and resuming a type,
// each one statement that also tells every listening process (NOTIFY, delivered at commit), and the
// list of them; and the types' rate buckets, for GET /types. The claims read both themselves
// (claims.ts); nothing here moves a job.
import type { Pauses, Recovery } from "../store.ts";
import type { Connection, Methods } from "./connection.ts";
import { NOTIFY_CHANNEL, PAUSES_CHANGED } from "./cluster.ts";
import { at, ms } from "./sql.ts";

export function createPauses(db: Connection): Methods<Pauses & Pick<Recovery, "pruneBuckets">> {
  return {
    pauseType: db.op("pauseType", async (type: string, now: number) => {
      const [row] = await db.query<{ changed: boolean }>(`
        WITH added AS (
          INSERT INTO jobqueue_paused (type, paused_at) VALUES ($1, ${at("$2")}) ON CONFLICT (type) DO NOTHING RETURNING type)
        SELECT EXISTS (SELECT 1 FROM added) AS changed, pg_notify($3, $4)`, [type, now, NOTIFY_CHANNEL, PAUSES_CHANGED]);
      return row?.changed ?? false;
    }),

    resumeType: db.op("resumeType", async (type: string) => {
      const [row] = await db.query<{ changed: boolean }>(`
        WITH gone AS (DELETE FROM jobqueue_paused WHERE type = $1 RETURNING type)
        SELECT EXISTS (SELECT 1 FROM gone) AS changed, pg_notify($2, $3)`, [type, NOTIFY_CHANNEL, PAUSES_CHANGED]);
      return row?.changed ?? false;
    }),

    pausedTypes: db.op("pausedTypes", async () =>
      (await db.query<{ type: string }>("SELECT type FROM jobqueue_paused ORDER BY type")).map((r) => r.type)),

    pruneBuckets: db.op("pruneBuckets", async (_now: number, limit: number) => {
      // A claim holding a bucket makes this wait; the row it commits is read again (a future tat stays).
      const rows = await db.query<{ n: number }>(`
        WITH gone AS (
          DELETE FROM jobqueue_buckets WHERE (type, key) IN (
            SELECT type, key FROM jobqueue_buckets WHERE key <> '' AND tat < ${ms("clock_timestamp()")} LIMIT $1)
            AND tat < ${ms("clock_timestamp()")}
          RETURNING 1)
        SELECT count(*)::int AS n FROM gone`, [limit]);
      return rows[0]?.n ?? 0;
    }),

    rateBuckets: db.op("rateBuckets", async () =>
      await db.query<{ type: string; tat: number; now: number }>(
        `SELECT type, tat, ${ms("clock_timestamp()")} AS now FROM jobqueue_buckets WHERE key = '' ORDER BY type`)),
  };
}
