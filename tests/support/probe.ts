// probe.ts (test support): reads a store's tables directly, for either store, while no server
// holds them (the embedded store's file is locked by its server).
import { Database } from "bun:sqlite";
import postgres from "postgres";

export interface StoreProbe {
  /** Environment that points the binary at this store. */
  env: Record<string, string>;
  inflightIds(): Promise<Set<string>>;
  deadRows(): Promise<Map<string, { attempts: number; last_error: string }>>;
  pendingRows(): Promise<Map<string, { attempts: number }>>;
  /** pending + inflight rows. */
  liveCount(): Promise<number>;
}

export function postgresProbe(url: string): StoreProbe {
  const q = async <T,>(fn: (sql: postgres.Sql) => Promise<T>) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      return await fn(sql);
    } finally {
      await sql.end();
    }
  };
  return {
    env: { DATABASE_URL: url },
    inflightIds: () => q(async (sql) => new Set((await sql<{ id: string }[]>`SELECT id::text FROM inflight_jobs`).map((r) => r.id))),
    deadRows: () => q(async (sql) => new Map((await sql<{ id: string; attempts: number; last_error: string }[]>`SELECT id::text, attempts, last_error FROM dead_jobs`).map((r) => [r.id, r]))),
    pendingRows: () => q(async (sql) => new Map((await sql<{ id: string; attempts: number }[]>`SELECT id::text, attempts FROM pending_jobs`).map((r) => [r.id, r]))),
    liveCount: () => q(async (sql) => Number((await sql<{ n: string }[]>`SELECT (SELECT count(*) FROM pending_jobs) + (SELECT count(*) FROM inflight_jobs) AS n`)[0]!.n)),
  };
}

export function sqliteProbe(path: string): StoreProbe {
  const q = <T,>(fn: (d: Database) => T): Promise<T> => {
    const d = new Database(path, { readonly: true });
    try {
      return Promise.resolve(fn(d));
    } finally {
      d.close(true);
    }
  };
  return {
    env: { JOBQUEUE_DB: path },
    inflightIds: () => q((d) => new Set(d.query<{ id: number }, []>("SELECT id FROM inflight_jobs").all().map((r) => String(r.id)))),
    deadRows: () => q((d) => new Map(d.query<{ id: number; attempts: number; last_error: string }, []>("SELECT id, attempts, last_error FROM dead_jobs").all().map((r) => [String(r.id), r]))),
    pendingRows: () => q((d) => new Map(d.query<{ id: number; attempts: number }, []>("SELECT id, attempts FROM pending_jobs").all().map((r) => [String(r.id), r]))),
    liveCount: () => q((d) => d.query<{ n: number }, []>("SELECT (SELECT count(*) FROM pending_jobs) + (SELECT count(*) FROM inflight_jobs) AS n").get()!.n),
  };
}
