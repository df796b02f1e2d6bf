-- 011_completed_jobs.sql: a small record of each completed job, kept for --keep-completed so
-- GET /jobs/:id can answer "completed" (no payload), and pruned in batches by the maintenance loop.
CREATE TABLE completed_jobs (
  id           INTEGER PRIMARY KEY,
  type         TEXT    NOT NULL,
  priority     INTEGER NOT NULL,
  attempts     INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  run_at       INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  finished_at  INTEGER NOT NULL,
  result       TEXT
);
-- Pruning takes the oldest records first.
CREATE INDEX completed_jobs_finished_at_idx ON completed_jobs (finished_at);
