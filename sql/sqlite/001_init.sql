-- 001_init.sql: the three tables of the job state machine for the embedded store. A job lives in
-- exactly one of them and keeps its id (drawn from job_ids, never reused) through every move.
-- Times are INTEGER epoch milliseconds; payload is the JSON text exactly as submitted.

-- The one source of ids: insert bumps last_id in the same transaction that adds the rows, so an
-- id is never handed out twice, whichever table its job has moved to since.
CREATE TABLE job_ids (
  only    INTEGER PRIMARY KEY CHECK (only = 1),
  last_id INTEGER NOT NULL
);
INSERT INTO job_ids (only, last_id) VALUES (1, 0);

CREATE TABLE pending_jobs (
  id           INTEGER PRIMARY KEY,
  type         TEXT    NOT NULL,
  payload      TEXT    NOT NULL,
  priority     INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 100),
  attempts     INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
  timeout_ms   INTEGER,
  run_at       INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  last_error   TEXT
);

CREATE TABLE inflight_jobs (
  id           INTEGER PRIMARY KEY,
  type         TEXT    NOT NULL,
  payload      TEXT    NOT NULL,
  priority     INTEGER NOT NULL,
  attempts     INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  timeout_ms   INTEGER,
  run_at       INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  last_error   TEXT,
  picked_at    INTEGER NOT NULL,
  lease_until  INTEGER NOT NULL,
  owner        TEXT    NOT NULL
);
-- The reaper scans expired leases; start-up recovers one owner's rows.
CREATE INDEX inflight_jobs_lease_until_idx ON inflight_jobs (lease_until);
CREATE INDEX inflight_jobs_owner_idx ON inflight_jobs (owner);

CREATE TABLE dead_jobs (
  id           INTEGER PRIMARY KEY,
  type         TEXT    NOT NULL,
  payload      TEXT    NOT NULL,
  priority     INTEGER NOT NULL,
  attempts     INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  timeout_ms   INTEGER,
  run_at       INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  last_error   TEXT,
  failed_at    INTEGER NOT NULL
);
CREATE INDEX dead_jobs_type_id_idx ON dead_jobs (type, id);
