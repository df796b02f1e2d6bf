-- 002_pending_run_at.sql: due pending rows oldest first, for refilling the scheduler heap.
CREATE INDEX pending_jobs_run_at_idx ON pending_jobs (run_at);
