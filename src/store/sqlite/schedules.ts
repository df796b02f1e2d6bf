// schedules.ts: the embedded store's recurring-schedule verbs: a tick's job is inserted in the same
// immediate transaction that moves the schedule's last tick forward to it, so a tick offered twice
// (a restart, a late timer) is inserted once.
import type { NewJob, ScheduleState } from "../rows.ts";
import type { Connection, Part } from "./connection.ts";

export function createSchedules({ conn }: { conn: Connection }): Part<"enqueueTick" | "scheduleStates"> {
  const { db, op, prepare } = conn;
  const bumpIds = prepare<{ last_id: number }, []>("UPDATE job_ids SET last_id = last_id + 1 RETURNING last_id");
  const moveTick = prepare<{ name: string }, [name: string, tick: number, jobId: number]>(`
    INSERT INTO jobqueue_schedules (name, last_tick, last_job_id) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick, last_job_id = excluded.last_job_id
      WHERE jobqueue_schedules.last_tick < excluded.last_tick
    RETURNING name`);
  const insertJob = prepare<never, [id: number, type: string, payload: string, priority: number, maxAttempts: number,
    timeoutMs: number | null, runAt: number, createdAt: number, key: string | null, startBy: number | null]>(`
    INSERT INTO pending_jobs (id, type, payload, priority, max_attempts, timeout_ms, run_at, created_at, key, start_by)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const states = prepare<ScheduleState, []>(
    "SELECT name, last_tick AS lastTick, last_job_id AS lastJobId FROM jobqueue_schedules ORDER BY name");

  const enqueueTx = db.transaction((name: string, tick: number, job: NewJob, now: number): number | null => {
    const id = bumpIds().get()!.last_id;
    if (moveTick().get(name, tick, id) === null) return null; // the id is a gap, as with a losing idempotency key
    insertJob().run(id, job.type, job.payload, job.priority, job.maxAttempts, job.timeoutMs, job.runAt, now, job.key ?? null, job.startBy ?? null);
    return id;
  });
  return {
    enqueueTick: op("enqueueTick", (name, tick, job, now) => enqueueTx.immediate(name, tick, job, now)),
    scheduleStates: op("scheduleStates", () => states().all()),
  };
}
