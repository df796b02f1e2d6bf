-- 015_flow_columns.sql: what flow control needs on every job, carried through every move between
-- the job tables: the job's key (a tenant, customer or resource; keyed types limit and share turns
-- per key), the moment (epoch ms) after which no attempt may start (start_by; the reaper
-- dead-letters the job as expired instead), and how often a target pushed back without using an
-- attempt (throttles).
ALTER TABLE pending_jobs  ADD COLUMN key TEXT;
ALTER TABLE pending_jobs  ADD COLUMN start_by INTEGER;
ALTER TABLE pending_jobs  ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inflight_jobs ADD COLUMN key TEXT;
ALTER TABLE inflight_jobs ADD COLUMN start_by INTEGER;
ALTER TABLE inflight_jobs ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dead_jobs     ADD COLUMN key TEXT;
ALTER TABLE dead_jobs     ADD COLUMN start_by INTEGER;
ALTER TABLE dead_jobs     ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
-- The reaper finds pending jobs past their deadline; most jobs have none, so the index holds only those that do.
CREATE INDEX pending_jobs_start_by_idx ON pending_jobs (start_by) WHERE start_by IS NOT NULL;
