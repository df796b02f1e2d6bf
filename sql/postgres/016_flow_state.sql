-- 016_flow_state.sql: flow control's shared state, so every node sharing the database sees one truth.
-- jobqueue_paused: the job types an operator paused (they accept submits and start nothing until resumed).
-- jobqueue_buckets: one rate limit's state per (type, key) (key '' for the type's own rate): the
-- theoretical arrival time of its next start (GCRA, epoch ms on the database's clock). Claims lock
-- the rows they weigh, so nodes take turns on a bucket and together never exceed it.
CREATE TABLE jobqueue_paused (
  type      text PRIMARY KEY,
  paused_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE jobqueue_buckets (
  type text NOT NULL,
  key  text NOT NULL,
  tat  double precision NOT NULL,
  PRIMARY KEY (type, key)
);
-- Per-key concurrency counts the running jobs of one key.
CREATE INDEX inflight_jobs_type_key_idx ON inflight_jobs (type, key) WHERE key IS NOT NULL;
