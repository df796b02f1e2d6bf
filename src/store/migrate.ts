// migrate.ts: the schema's numbered migrations for both dialects (one list of names, so the two
// can never disagree on versions) and the one rule for running them: in version order, each one
// applied with its record in the dialect's jobqueue_migrations table, inside one transaction that
// holds the dialect's migration lock. The SQL lives in sql/<dialect>/, imported as text so the
// compiled binary carries it; beside the list, only the statements that keep the record of what ran.
import pg001 from "../../sql/postgres/001_init.sql" with { type: "text" };
import pg002 from "../../sql/postgres/002_pending_run_at.sql" with { type: "text" };
import pg003 from "../../sql/postgres/003_nodes.sql" with { type: "text" };
import pg010 from "../../sql/postgres/010_idempotency_keys.sql" with { type: "text" };
import pg011 from "../../sql/postgres/011_completed_jobs.sql" with { type: "text" };
import pg012 from "../../sql/postgres/012_inflight_pk_only.sql" with { type: "text" };
import pg013 from "../../sql/postgres/013_completed_expiry.sql" with { type: "text" };
import pg014 from "../../sql/postgres/014_pending_priority_run_at.sql" with { type: "text" };
import pg015 from "../../sql/postgres/015_flow_columns.sql" with { type: "text" };
import pg016 from "../../sql/postgres/016_flow_state.sql" with { type: "text" };
import pg017 from "../../sql/postgres/017_schedules.sql" with { type: "text" };
import pg018 from "../../sql/postgres/018_attempts.sql" with { type: "text" };
import pg019 from "../../sql/postgres/019_trace.sql" with { type: "text" };
import lite001 from "../../sql/sqlite/001_init.sql" with { type: "text" };
import lite002 from "../../sql/sqlite/002_pending_run_at.sql" with { type: "text" };
import lite003 from "../../sql/sqlite/003_nodes.sql" with { type: "text" };
import lite010 from "../../sql/sqlite/010_idempotency_keys.sql" with { type: "text" };
import lite011 from "../../sql/sqlite/011_completed_jobs.sql" with { type: "text" };
import lite012 from "../../sql/sqlite/012_inflight_pk_only.sql" with { type: "text" };
import lite013 from "../../sql/sqlite/013_completed_expiry.sql" with { type: "text" };
import lite014 from "../../sql/sqlite/014_pending_priority_run_at.sql" with { type: "text" };
import lite015 from "../../sql/sqlite/015_flow_columns.sql" with { type: "text" };
import lite016 from "../../sql/sqlite/016_flow_state.sql" with { type: "text" };
import lite017 from "../../sql/sqlite/017_schedules.sql" with { type: "text" };
import lite018 from "../../sql/sqlite/018_attempts.sql" with { type: "text" };
import lite019 from "../../sql/sqlite/019_trace.sql" with { type: "text" };

export type Dialect = "postgres" | "sqlite";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const NAMES = [
  "001_init",
  "002_pending_run_at",
  "003_nodes",
  "010_idempotency_keys",
  "011_completed_jobs",
  "012_inflight_pk_only",
  "013_completed_expiry",
  "014_pending_priority_run_at",
  "015_flow_columns",
  "016_flow_state",
  "017_schedules",
  "018_attempts",
  "019_trace",
] as const;

const SQL: Record<Dialect, readonly string[]> = {
  postgres: [pg001, pg002, pg003, pg010, pg011, pg012, pg013, pg014, pg015, pg016, pg017, pg018, pg019],
  sqlite: [lite001, lite002, lite003, lite010, lite011, lite012, lite013, lite014, lite015, lite016, lite017, lite018, lite019],
};

/** The table that records what was applied, in each dialect. */
export const MIGRATIONS_TABLE: Record<Dialect, string> = {
  postgres: `CREATE TABLE IF NOT EXISTS jobqueue_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  sqlite: `CREATE TABLE IF NOT EXISTS jobqueue_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL,
    applied_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)))`,
};

/** Records one applied migration; parameters: version, name (PostgreSQL $1 $2, SQLite ? ?). */
export const RECORD_MIGRATION: Record<Dialect, string> = {
  postgres: "INSERT INTO jobqueue_migrations (version, name) VALUES ($1, $2)",
  sqlite: "INSERT INTO jobqueue_migrations (version, name) VALUES (?, ?)",
};

export const APPLIED_VERSIONS = "SELECT version FROM jobqueue_migrations";

/** Every migration of a dialect, in version order. */
export function migrationsOf(dialect: Dialect): Migration[] {
  return NAMES.map((name, i) => ({ version: Number(name.slice(0, 3)), name, sql: SQL[dialect][i]! }));
}

/** The migrations still to apply given the versions already applied, in the order to apply them. */
export function toApply(dialect: Dialect, applied: ReadonlySet<number>): Migration[] {
  return migrationsOf(dialect).filter((m) => !applied.has(m.version));
}
