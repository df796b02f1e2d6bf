// schedules.ts: the PostgreSQL store's recurring-schedule verbs: a tick's job is inserted by the same
// statement that moves the schedule's last tick forward to it, so of several nodes (or a restart)
// offering one tick, exactly one inserts it.
import type { Schedules } from "../store.ts";
import type { NewJob, ScheduleState } from "../rows.ts";
import type { Connection, Methods } from "./connection.ts";
import { at, ms } from "./sql.ts";

export function createSchedules(db: Connection): Methods<Schedules> {
  return {
    enqueueTick: db.op("enqueueTick", async (name: string, tick: number, job: NewJob, now: number) => {
      // The job's id is drawn before the upsert, which keeps it only when it moved the tick forward
      // (a losing draw is a gap in the ids, as a losing idempotency key's is).
      const rows = await db.query<{ id: number }>(`
        WITH won AS (
          INSERT INTO jobqueue_schedules AS s (name, last_tick, last_job_id)
          VALUES ($1, ${at("$2")}, nextval('jobs_id_seq'))
          ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick, last_job_id = excluded.last_job_id
            WHERE s.last_tick < excluded.last_tick
          RETURNING last_job_id)
        INSERT INTO pending_jobs (id, type, payload, priority, max_attempts, timeout_ms, run_at, created_at, key, start_by)
        SELECT won.last_job_id, $3, $4::json, $5, $6, $7, ${at("$8")}, ${at("$9")}, $10, ${at("$11")} FROM won
        RETURNING id`,
        [name, tick, job.type, job.payload, job.priority, job.maxAttempts, job.timeoutMs, job.runAt, now, job.key ?? null, job.startBy ?? null]);
      return rows[0]?.id ?? null;
    }),
    scheduleStates: db.op("scheduleStates", async (): Promise<ScheduleState[]> => {
      const rows = await db.query<{ name: string; last_tick: number; last_job_id: number }>(
        `SELECT name, ${ms("last_tick")} AS last_tick, last_job_id FROM jobqueue_schedules ORDER BY name`);
      return rows.map((r) => ({ name: r.name, lastTick: r.last_tick, lastJobId: r.last_job_id }));
    }),
  };
}
