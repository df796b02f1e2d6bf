// model-targets.ts (test support): the real stores a model-based run drives, one fresh empty store
// per sequence: SQLite in a new temp file, PostgreSQL in one throwaway database emptied between
// sequences. Two nodes, node-a and node-b: on PostgreSQL two Store instances on the database, each
// holding its own node id as a process does at start (holdNodeId, taken again after a restart), on
// SQLite (one process per file) two owner names on the one store. Nothing here decides what a
// store should answer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { createPostgresStore } from "../../src/store/postgres/index.ts";
import { createSqliteStore } from "../../src/store/sqlite/index.ts";
import type { Store, StoreTestHooks } from "../../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import { NODES } from "./model-steps.ts";
import { createTestDatabase } from "./pg.ts";

export interface ModelTarget {
  readonly name: string;
  /** Whether each node is a store instance of its own (PostgreSQL), so node ids are held apart. */
  readonly separateNodes: boolean;
  /** Fresh, migrated, empty store(s) for one sequence. */
  begin(): Promise<void>;
  /** The store node `node` talks to. */
  store(node: number): TestStore;
  /**
   * Close that node's store and open it again on the same file or database, holding its node id
   * again (a process restart: close must have let the id go).
   */
  restart(node: number): Promise<TestStore>;
  /** After a sequence (passed or not). */
  end(): Promise<void>;
  /** After every sequence. */
  dispose(): Promise<void>;
}

export function sqliteTarget(): ModelTarget {
  const dir = mkdtempSync(join(tmpdir(), "jq-model-"));
  let run = 0;
  let path = "";
  let store: TestStore | null = null;
  const open = async (node: number) => {
    const s = createSqliteStore({ path });
    await s.migrate();
    await s.holdNodeId(NODES[node]!);
    return (store = s);
  };
  return {
    name: "sqlite",
    separateNodes: false,
    async begin() {
      path = join(dir, `run-${++run}.db`);
      await open(0);
    },
    store: () => store!,
    async restart(node) {
      await store!.close();
      return await open(node);
    },
    async end() {
      await store?.close();
      store = null;
      for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(path + suffix, { force: true });
    },
    async dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function postgresTarget(): Promise<ModelTarget> {
  const db = await createTestDatabase("jq_model");
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  const open = async (node: number) => {
    const s = createPostgresStore({ url: db.url, max: 4 });
    await s.migrate();
    await s.holdNodeId(NODES[node]!);
    return s;
  };
  const stores: TestStore[] = [await open(0), await open(1)];
  return {
    name: "postgres",
    separateNodes: true,
    async begin() {
      await admin`TRUNCATE pending_jobs, inflight_jobs, dead_jobs, completed_jobs, idempotency_keys, jobqueue_nodes, jobqueue_paused`;
    },
    store: (node) => stores[node]!,
    async restart(node) {
      await stores[node]!.close();
      return (stores[node] = await open(node));
    },
    async end() {},
    async dispose() {
      for (const s of stores) await s.close();
      await admin.end();
      await db.drop();
    },
  };
}
