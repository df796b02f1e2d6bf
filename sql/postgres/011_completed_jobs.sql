-- 011_completed_jobs.sql: a small record of each completed job, kept for --keep-completed so
-- GET /jobs/:id can answer "completed" (no payload), and pruned in batches by the maintenance loop.
CREATE TABLE completed_jobs (
  id           bigint      PRIMARY KEY,
  type         text        NOT NULL,
  priority     smallint    NOT NULL,
  attempts     integer     NOT NULL,
  max_attempts integer     NOT NULL,
  run_at       timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL,
  result       text
);
-- Pruning takes the oldest records first.
CREATE INDEX completed_jobs_finished_at_idx ON completed_jobs (finished_at);
ALTER TABLE completed_jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
