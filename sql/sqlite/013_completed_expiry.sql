-- 013_completed_expiry.sql: each completed record carries its own expiry (finished_at plus the
-- --keep-completed in force when it was written), so it is pruned, and its idempotency key released,
-- whatever the setting is later. Records from before this column expire --keep-completed after
-- they finished, counted with the setting of the running server (NULL here).
ALTER TABLE completed_jobs ADD COLUMN expires_at INTEGER;
CREATE INDEX completed_jobs_expires_at_idx ON completed_jobs (expires_at);
