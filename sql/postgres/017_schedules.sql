-- 017_schedules.sql: each recurring schedule's last enqueued tick and the job it made. A tick is
-- enqueued by whichever node moves last_tick forward to it first (a conditional upsert in the same
-- statement as the job's insert), so every tick is enqueued once, across nodes and restarts.
CREATE TABLE jobqueue_schedules (
  name        text PRIMARY KEY,
  last_tick   timestamptz NOT NULL,
  last_job_id bigint NOT NULL
);
