-- 002_pending_run_at.sql: due pending rows oldest first, for refilling a scheduler heap that
-- missed rows (a commit whose reply was lost, another node's backlog).
CREATE INDEX pending_jobs_run_at_idx ON pending_jobs (run_at);
