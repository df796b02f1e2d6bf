// queues.ts (test support): a whole queue node in-process on either store (a fresh PostgreSQL
// database or a temp SQLite file), with JSON helpers for app.request(). Cleans up after itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHandlerRegistry, type Handler, type HandlerRegistry, type TypePolicy } from "../../src/handlers/handler.ts";
import type { Hono } from "hono";
import { defaultConfig, queueSettings } from "../../src/config/config.ts";
import { createApp, type HttpSettings } from "../../src/http/app.ts";
import { createJobQueue, type JobQueue, type JobQueueOptions } from "../../src/queue/jobqueue.ts";
import { createLogger } from "../../src/logger.ts";
import { createPostgresStore } from "../../src/store/postgres/index.ts";
import { createSqliteStore } from "../../src/store/sqlite/index.ts";
import type { Store, StoreTestHooks } from "../../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import { createTestDatabase } from "./pg.ts";

export type StoreKind = "sqlite" | "postgres";
export const STORE_KINDS: StoreKind[] = ["sqlite", "postgres"];

/**
 * A place for stores of one kind: open() as often as needed (one SQLite store at a time). `url` is
 * the PostgreSQL database's, for a test's own connection.
 */
export async function storeSite(kind: StoreKind): Promise<{ open(): TestStore; drop(): Promise<void>; url?: string }> {
  if (kind === "postgres") {
    const db = await createTestDatabase("jq_ops");
    return { open: () => createPostgresStore({ url: db.url }), drop: db.drop, url: db.url };
  }
  const dir = mkdtempSync(join(tmpdir(), "jq-ops-"));
  return {
    open: () => createSqliteStore({ path: join(dir, "jobs.db"), synchronous: "NORMAL" }),
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export type HandlerSpec = Handler | { handler: Handler; policy: Partial<TypePolicy> } | { pull: true; policy?: Partial<TypePolicy> };

/** A queue with its HTTP app, for app.request() in tests. */
export type TestQueue = JobQueue & { app: Hono };

/**
 * A started queue on `store` with these handlers: the option table's defaults, quickened for tests
 * (4 workers, 3 s leases, a 200 ms maintenance tick, 5-20 ms backoff), then `over`.
 */
export async function startQueue(
  store: Store,
  handlers: Record<string, HandlerSpec>,
  over: Partial<JobQueueOptions & HttpSettings> = {},
): Promise<TestQueue> {
  const registry = createHandlerRegistry({ timeoutMs: 5000, maxAttempts: 3, priority: 0 });
  for (const [type, h] of Object.entries(handlers)) {
    if (typeof h === "function") registry.register(type, h);
    else if ("pull" in h) registry.registerPull(type, h.policy);
    else registry.register(type, h.handler, h.policy);
  }
  return startQueueWith(store, registry, over);
}

/** startQueue with a registry of its own (from a types file, say). */
export async function startQueueWith(
  store: Store,
  registry: HandlerRegistry,
  over: Partial<JobQueueOptions & HttpSettings> = {},
): Promise<TestQueue> {
  const defaults = defaultConfig();
  const { bodyLimitBytes = defaults.bodyLimitBytes, maxQueued = defaults.maxQueued, ...options } = over;
  const q = createJobQueue({
    ...queueSettings(defaults), store, registry, logger: createLogger("silent"), nodeId: `test-${Math.random()}`, workers: 4,
    leaseMs: 3000, reapIntervalMs: 200, backoff: { baseMs: 5, capMs: 20 }, ...options,
  });
  await q.start();
  return Object.assign(q, { app: createApp(q.api, { bodyLimitBytes, maxQueued }) });
}

/** A request to the queue's app with an optional JSON body; the answer with its body parsed. */
export async function call(q: TestQueue, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.headers = { "content-type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const res = await q.app.request(path, init);
  const text = await res.text();
  return { status: res.status, body: text === "" ? null : JSON.parse(text) };
}
