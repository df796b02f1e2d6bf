-- 014_pending_priority_run_at.sql: due pending rows by priority, then run time. The most urgent due
-- rows by the aging key (run_at − priority × aging) are among the oldest rows of each priority, so
-- one index probe per priority (0-100) finds them exactly, whatever --aging-ms is: every node
-- compares the table's most urgent jobs with its own heap's each maintenance tick, and an idle
-- node claims them. It replaces the run_at index, so an insert still writes one such index. The id
-- breaks ties in the index's own order (SQLite's index rows end with the rowid, which is the id).
DROP INDEX IF EXISTS pending_jobs_run_at_idx;
CREATE INDEX pending_jobs_priority_run_at_idx ON pending_jobs (priority, run_at, id);
