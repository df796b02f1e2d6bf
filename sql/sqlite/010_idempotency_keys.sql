-- 010_idempotency_keys.sql: which job holds each idempotency key. Written in the transaction that
-- inserts the job and deleted in the transaction that takes the job out of the system for good.
CREATE TABLE idempotency_keys (
  key        TEXT    PRIMARY KEY,
  job_id     INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
-- Completion, cancel and delete release the key of the job they remove.
CREATE INDEX idempotency_keys_job_id_idx ON idempotency_keys (job_id);
