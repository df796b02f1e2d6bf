// test-server.ts (test support): a real server (startServer: Bun.serve on 127.0.0.1, port 0) on
// either store (an embedded store in a temp file, or a fresh PostgreSQL database), whose "noop"
// jobs hold their worker until shutdown, so every row a request wrote stays countable in the store.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/config.ts";
import type { ScheduleConfig } from "../../src/config/schedules.ts";
import { createHandlerRegistry, type Handler, type TypePolicy } from "../../src/handlers/handler.ts";
import { createLogger, type Logger } from "../../src/logger.ts";
import { startServer, type RunningServer } from "../../src/server.ts";
import { createPostgresStore } from "../../src/store/postgres/index.ts";
import { createSqliteStore } from "../../src/store/sqlite/index.ts";
import type { Store, StoreTestHooks } from "../../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import { createTestDatabase } from "./pg.ts";
import type { StoreKind } from "./queues.ts";

/** Never finishes on its own: the job stays inflight (one worker) or pending until shutdown. */
export const holdUntilShutdown: Handler = (_job, signal) =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));

export interface TestServer {
  server: RunningServer;
  /** Which store the server runs on. */
  kind: StoreKind;
  /** Rows in every table of the store (pending + inflight + dead). */
  rows(): Promise<number>;
  stop(): Promise<void>;
}

/** A store of `kind` in a fresh place, and how to remove that place once the store is closed. */
async function freshStore(kind: StoreKind): Promise<{ store: TestStore; drop: () => Promise<void> }> {
  if (kind === "postgres") {
    const db = await createTestDatabase("jq_srv");
    return { store: createPostgresStore({ url: db.url }), drop: db.drop };
  }
  const dir = await mkdtemp(join(tmpdir(), "jobqueue-sec-"));
  return {
    store: createSqliteStore({ path: join(dir, "jobs.db"), synchronous: "NORMAL" }),
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

export async function startTestServer(opts: {
  /** The store behind the server; SQLite unless told. */
  store?: StoreKind;
  args?: string[];
  env?: Record<string, string>;
  handler?: Handler;
  /** Extra job types and their handlers (with a policy of their own, if given), beside "noop". */
  handlers?: Record<string, Handler | { handler: Handler; policy: Partial<TypePolicy> }>;
  /** Recurring schedules of those types. */
  schedules?: ScheduleConfig[];
  logger?: Logger;
} = {}): Promise<TestServer> {
  const kind = opts.store ?? "sqlite";
  const { store, drop } = await freshStore(kind);
  const registry = createHandlerRegistry({ timeoutMs: 3_600_000, maxAttempts: 5, priority: 0 });
  registry.register("noop", opts.handler ?? holdUntilShutdown);
  for (const [type, h] of Object.entries(opts.handlers ?? {})) {
    if (typeof h === "function") registry.register(type, h);
    else registry.register(type, h.handler, h.policy);
  }
  const argv = ["--port", "0", "--host", "127.0.0.1", "--workers", "1", ...(opts.args ?? [])];
  const { config } = loadConfig(opts.env ?? {}, argv, "test");
  let server: RunningServer;
  try {
    server = await startServer({ config, logger: opts.logger ?? createLogger("silent"), registry, store, ...(opts.schedules !== undefined && { schedules: opts.schedules }) });
  } catch (err) {
    await drop();
    throw err;
  }
  return {
    server,
    kind,
    async rows() {
      const c = await store.counts();
      return c.pending + c.inflight + c.dead;
    },
    async stop() {
      await server.stop(0);
      await drop();
    },
  };
}
