-- 003_nodes.sql: the processes sharing this database. Each one upserts its row on every
-- maintenance tick and deletes it on a clean shutdown; a row whose heartbeat is old is a dead node
-- (its inflight rows come back when their leases expire).
CREATE TABLE jobqueue_nodes (
  id           text        PRIMARY KEY,
  started_at   timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL
);
