-- 018_attempts.sql: the story of each job's attempts that did not complete it (a failure, a timeout,
-- a throttle, an expired lease, a hand-back at shutdown or after a restart), written in the same
-- transaction as the move that ends the attempt, the newest 20 per job kept. An attempt that
-- completes its job writes nothing here; a completed record (--keep-completed) keeps its duration
-- and node. A job's rows go with the job (completion, cancel, deletion, pruning). Times in epoch ms.
CREATE TABLE job_attempts (
  seq        INTEGER PRIMARY KEY,
  job_id     INTEGER NOT NULL,
  attempt    INTEGER NOT NULL,
  node       TEXT,
  started_at INTEGER,
  ended_at   INTEGER NOT NULL,
  outcome    TEXT    NOT NULL,
  status     INTEGER,
  exit_code  INTEGER,
  error      TEXT
);
CREATE INDEX job_attempts_job_id_idx ON job_attempts (job_id, seq);
ALTER TABLE completed_jobs ADD COLUMN run_ms INTEGER;
ALTER TABLE completed_jobs ADD COLUMN node TEXT;
