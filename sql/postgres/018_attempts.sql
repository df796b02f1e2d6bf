-- 018_attempts.sql: the story of each job's attempts that did not complete it (a failure, a timeout,
-- a throttle, an expired lease, a hand-back at shutdown or after a restart), written in the same
-- statement as the move that ends the attempt, the newest 20 per job kept. An attempt that completes
-- its job writes nothing here; a completed record (--keep-completed) keeps its duration and node.
-- A job's rows go with the job (completion, cancel, deletion, pruning).
CREATE TABLE job_attempts (
  seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id     bigint      NOT NULL,
  attempt    integer     NOT NULL,
  node       text,
  started_at timestamptz,
  ended_at   timestamptz NOT NULL,
  outcome    text        NOT NULL,
  status     integer,
  exit_code  integer,
  error      text
);
CREATE INDEX job_attempts_job_id_idx ON job_attempts (job_id, seq);
ALTER TABLE completed_jobs ADD COLUMN run_ms integer, ADD COLUMN node text;
