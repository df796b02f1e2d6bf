-- 003_nodes.sql: the process serving this file (one at most: the file is locked), with its heartbeat.
CREATE TABLE jobqueue_nodes (
  id           TEXT    PRIMARY KEY,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);
