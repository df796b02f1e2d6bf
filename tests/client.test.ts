// client.test.ts: the typed client (src/client/client.ts) against a real server (Bun.serve on a free port,
// behind a bearer token): submit with and without idempotency keys, read, cancel, dead letters
// one by one, page by page and in bulk, stats, and errors with their status and code.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobQueueClientError, createClient } from "../src/client/client.ts";
import { loadConfig } from "../src/config/config.ts";
import { createHandlerRegistry } from "../src/handlers/handler.ts";
import { createLogger } from "../src/logger.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import { waitFor } from "./support/wait.ts";

const TOKEN = "client-test-token-0123456789";
let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jq-client-"));
  const registry = createHandlerRegistry({ timeoutMs: 5000, maxAttempts: 2, priority: 0 });
  registry.register("noop", () => "ok");
  registry.register("doomed", () => { throw new Error("never works"); });
  registry.register("hold", (_job, signal) => new Promise((resolve) => signal.addEventListener("abort", () => resolve(undefined))));
  const { config } = loadConfig({ JOBQUEUE_TOKEN: TOKEN }, ["--port", "0", "--workers", "4", "--keep-completed", "1h", "--backoff-base-ms", "1", "--backoff-cap-ms", "1"], "test");
  server = await startServer({
    config, registry, logger: createLogger("silent"),
    store: createSqliteStore({ path: join(dir, "jobs.db"), synchronous: "NORMAL" }),
  });
});
afterAll(async () => {
  await server.stop(0);
  rmSync(dir, { recursive: true, force: true });
});

test("a producer submits, reads and cancels jobs, with idempotency keys", async () => {
  const client = createClient({ baseUrl: `${server.url}/`, token: TOKEN });
  const first = await client.submit({ type: "noop", payload: { to: "a@b.c" }, idempotencyKey: "welcome:1" });
  expect(first.duplicate).toBe(false);
  expect(await client.submit({ type: "noop", idempotencyKey: "welcome:1" })).toEqual({ id: first.id, duplicate: true });
  await waitFor(async () => (await client.get(first.id))?.state === "completed", { what: "completed" });
  expect(await client.get(first.id)).toMatchObject({ id: first.id, type: "noop", state: "completed", result: "ok" });
  expect(await client.get("987654321")).toBeNull();

  const batch = await client.submitBatch([{ type: "noop", delayMs: 3_600_000 }, { type: "hold" }]);
  expect(batch.duplicates).toEqual([false, false]);
  const [later, held] = batch.ids as [string, string];
  expect(await client.cancel(later)).toBe("removed");
  await waitFor(async () => (await client.get(held))?.state === "inflight", { what: "held job running" });
  expect(await client.cancel(held)).toBe("cancelling");
  await waitFor(async () => (await client.get(held)) === null, { what: "cancelled job gone" });
  expect(await client.cancel(held)).toBe("not_found");
});

test("an operator pages through dead jobs, retries and deletes them, and reads stats", async () => {
  const client = createClient({ baseUrl: server.url, token: TOKEN });
  const { ids } = await client.submitBatch(Array.from({ length: 5 }, () => ({ type: "doomed" })));
  await waitFor(async () => (await client.stats()).types.doomed?.dead === 5, { what: "five dead" });
  const page = await client.dead.list({ type: "doomed", limit: 2 });
  expect(page.jobs.map((j) => j.id)).toEqual(ids.slice(0, 2));
  expect(page.next).toBe(ids[1]!);
  const all: string[] = [];
  for await (const job of client.dead.all({ type: "doomed", pageSize: 2 })) all.push(job.id);
  expect(all).toEqual(ids);
  expect(await client.dead.delete(ids[0]!)).toBe(true);
  expect(await client.dead.delete(ids[0]!)).toBe(false);
  expect(await client.dead.retry(ids[1]!)).toBe(true);
  expect(await client.dead.retry("987654321")).toBe(false);
  await waitFor(async () => (await client.get(ids[1]!))?.state === "dead", { what: "it dies again" });
  expect(await client.dead.retryType("doomed")).toBe(4);
  await waitFor(async () => (await client.stats()).types.doomed?.dead === 4, { what: "four dead again" });
  expect(await client.dead.purgeType("doomed")).toBe(4);
  const stats = await client.stats();
  expect(stats.types.doomed).toBeUndefined();
  expect(stats.completedLastMinute).toBeGreaterThanOrEqual(1);
});

test("errors carry the status and code, and a missing token is a 401", async () => {
  const client = createClient({ baseUrl: server.url, token: TOKEN });
  const bad = await client.submit({ type: "noop", priority: 101 }).then(() => null, (e: unknown) => e);
  expect(bad).toBeInstanceOf(JobQueueClientError);
  expect(bad).toMatchObject({ status: 400, code: "invalid_request", message: "priority: expected an integer from 0 to 100" });
  const anonymous = createClient({ baseUrl: server.url });
  await expect(anonymous.stats()).rejects.toMatchObject({ status: 401, code: "unauthorized" });
  await expect(client.dead.retryType("no such type!")).rejects.toMatchObject({ status: 400 });
});

test("an operator lists the job types, pauses one (its jobs wait) and resumes it (they run)", async () => {
  const client = createClient({ baseUrl: server.url, token: TOKEN });
  const types = await client.types.list();
  expect(types.map((t) => t.type)).toEqual(["doomed", "hold", "noop"]);
  expect(types[0]).toMatchObject({ paused: false, policy: { maxAttempts: 2, timeoutMs: 5000, priority: 0 } });
  expect(await client.types.pause("noop")).toEqual({ type: "noop", paused: true });
  const { id } = await client.submit({ type: "noop" });
  expect((await client.types.list()).find((t) => t.type === "noop")).toMatchObject({ paused: true, waiting: 1, running: 0 });
  expect(await client.types.resume("noop")).toEqual({ type: "noop", paused: false });
  await waitFor(async () => (await client.get(id))?.state === "completed", { what: "the job ran once resumed" });
  await expect(client.types.pause("nope")).rejects.toMatchObject({ status: 404, code: "not_found" });
});
