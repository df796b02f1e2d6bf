-- 012_inflight_pk_only.sql: inflight_jobs keeps only its primary key. Its rows are bounded by the
-- worker slots of the live nodes, so the reaper's scan for expired leases (every few seconds)
-- and a restart's recovery of its own rows (once) read a small table; the two secondary indexes
-- they used cost every claim three extra index writes (WAL records) per job instead.
DROP INDEX IF EXISTS inflight_jobs_lease_until_idx;
DROP INDEX IF EXISTS inflight_jobs_owner_idx;
