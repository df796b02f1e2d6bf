-- 016_flow_state.sql: flow control's state, kept with the jobs so it survives restarts.
-- jobqueue_paused: the job types an operator paused (they accept submits and start nothing until resumed).
-- jobqueue_buckets: one rate limit's state per (type, key) (key '' for the type's own rate): the
-- theoretical arrival time (epoch ms) of its next start (GCRA).
CREATE TABLE jobqueue_paused (
  type      TEXT PRIMARY KEY,
  paused_at INTEGER NOT NULL
) STRICT;
CREATE TABLE jobqueue_buckets (
  type TEXT NOT NULL,
  key  TEXT NOT NULL,
  tat  REAL NOT NULL,
  PRIMARY KEY (type, key)
) STRICT, WITHOUT ROWID;
-- Per-key concurrency counts the running jobs of one key.
CREATE INDEX inflight_jobs_type_key_idx ON inflight_jobs (type, key) WHERE key IS NOT NULL;
