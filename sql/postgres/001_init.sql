-- 001_init.sql: the three tables of the job state machine. A job lives in exactly one of them
-- and keeps its id (from jobs_id_seq) through every move.

CREATE SEQUENCE IF NOT EXISTS jobs_id_seq AS bigint;

CREATE TABLE pending_jobs (
  id           bigint      PRIMARY KEY DEFAULT nextval('jobs_id_seq'),
  type         text        NOT NULL,
  payload      json        NOT NULL,
  priority     smallint    NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 100),
  attempts     integer     NOT NULL DEFAULT 0,
  max_attempts integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
  timeout_ms   integer,
  run_at       timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  last_error   text
);

CREATE TABLE inflight_jobs (
  id           bigint      PRIMARY KEY,
  type         text        NOT NULL,
  payload      json        NOT NULL,
  priority     smallint    NOT NULL,
  attempts     integer     NOT NULL,
  max_attempts integer     NOT NULL,
  timeout_ms   integer,
  run_at       timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  last_error   text,
  picked_at    timestamptz NOT NULL,
  lease_until  timestamptz NOT NULL,
  owner        text        NOT NULL
);
-- The reaper scans expired leases; start-up recovers one owner's rows.
CREATE INDEX inflight_jobs_lease_until_idx ON inflight_jobs (lease_until);
CREATE INDEX inflight_jobs_owner_idx ON inflight_jobs (owner);

CREATE TABLE dead_jobs (
  id           bigint      PRIMARY KEY,
  type         text        NOT NULL,
  payload      json        NOT NULL,
  priority     smallint    NOT NULL,
  attempts     integer     NOT NULL,
  max_attempts integer     NOT NULL,
  timeout_ms   integer,
  run_at       timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  last_error   text,
  failed_at    timestamptz NOT NULL
);
CREATE INDEX dead_jobs_type_id_idx ON dead_jobs (type, id);

-- Hot tables churn: vacuum them early so dead tuples never pile up between autovacuum runs.
ALTER TABLE pending_jobs  SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
ALTER TABLE inflight_jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
