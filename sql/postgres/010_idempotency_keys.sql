-- 010_idempotency_keys.sql: which job holds each idempotency key. Written in the transaction that
-- inserts the job (the primary key makes concurrent submits of one key agree on one winner), and
-- deleted in the transaction that takes the job out of the system for good.
CREATE TABLE idempotency_keys (
  key        text        PRIMARY KEY,
  job_id     bigint      NOT NULL,
  created_at timestamptz NOT NULL
);
-- Completion, cancel and delete release the key of the job they remove.
CREATE INDEX idempotency_keys_job_id_idx ON idempotency_keys (job_id);
