-- 017_schedules.sql: each recurring schedule's last enqueued tick (epoch ms) and the job it made.
-- A tick is enqueued by the transaction that moves last_tick forward to it, with the job's insert,
-- so every tick is enqueued once, across restarts.
CREATE TABLE jobqueue_schedules (
  name        TEXT PRIMARY KEY,
  last_tick   INTEGER NOT NULL,
  last_job_id INTEGER NOT NULL
);
