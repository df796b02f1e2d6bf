// dead-letters.test.ts: dead-letter operations on a whole queue node, on both stores: listing with
// a cursor, retrying one job so it runs again, deleting, and bulk actions across many chunks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Store, StoreTestHooks } from "../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`dead letters on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    beforeAll(async () => {
      site = await storeSite(kind);
    });
    afterAll(async () => {
      await site.drop();
    });

    test("a dead job is listed, and a retry runs it again from attempt 1 until it completes", async () => {
      let healthy = false;
      const attempts: number[] = [];
      const q = await startQueue(site.open(), {
        flaky: (job) => {
          attempts.push(job.attempt);
          if (!healthy) throw new Error("downstream is down");
        },
      });
      const { body: { id } } = await call(q, "POST", "/submit", { type: "flaky", maxAttempts: 2 });
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).body.state === "dead", { what: "dead" });
      const page = await call(q, "GET", "/dead?type=flaky");
      expect(page.status).toBe(200);
      expect(page.body.next).toBeNull();
      expect(page.body.jobs).toHaveLength(1);
      expect(page.body.jobs[0]).toMatchObject({ id, state: "dead", attempts: 2, lastError: "downstream is down" });
      expect(typeof page.body.jobs[0].failedAt).toBe("string");

      healthy = true;
      expect(await call(q, "POST", `/dead/${id}/retry`)).toEqual({ status: 200, body: { id } });
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).status === 404, { what: "retried job completes" });
      expect(attempts).toEqual([1, 2, 1]);
      expect((await call(q, "POST", `/dead/${id}/retry`)).status).toBe(404);
      expect((await call(q, "GET", "/dead?type=flaky")).body).toEqual({ jobs: [], next: null });
      await q.shutdown(1000);
    });

    test("a deleted dead job is gone, and deleting it again or a live job is a 404", async () => {
      const q = await startQueue(site.open(), { doomed: () => { throw new Error("no"); }, hold: (_j, s) => new Promise((r) => s.addEventListener("abort", () => r(undefined))) });
      const { body: { id } } = await call(q, "POST", "/submit", { type: "doomed", maxAttempts: 1 });
      const live = (await call(q, "POST", "/submit", { type: "hold" })).body.id;
      await waitFor(async () => (await call(q, "GET", `/jobs/${id}`)).body.state === "dead", { what: "dead" });
      expect((await call(q, "DELETE", `/dead/${id}`)).status).toBe(204);
      expect((await call(q, "GET", `/jobs/${id}`)).status).toBe(404);
      expect((await call(q, "DELETE", `/dead/${id}`)).status).toBe(404);
      expect((await call(q, "DELETE", `/dead/${live}`)).status).toBe(404);
      await q.shutdown(0);
    });

    test("bulk retry and purge move every dead job of one type across several chunks, and no other type", async () => {
      const store = site.open();
      await store.migrate();
      const now = Date.now();
      const bury = async (type: string, n: number) => {
        const ids = await store.insert(Array.from({ length: n }, () => ({ type, payload: "null", priority: 0, maxAttempts: 1, runAt: now, timeoutMs: null })), now);
        (await store.claim(ids, "elsewhere", now, 60_000)).jobs;
        await store.bury(ids.map((id) => ({ id, attempt: 1, error: "x" })), now);
        return ids;
      };
      await bury("bulk.a", 2_345);
      const others = await bury("bulk.b", 3);
      await closeIfSqlite(kind, store);

      const ran = new Set<number>();
      const q = await startQueue(kind === "sqlite" ? site.open() : store, { "bulk.a": (job) => void ran.add(job.id) }, { workers: 16 });
      const retried = await call(q, "POST", "/dead/retry?type=bulk.a");
      expect(retried).toEqual({ status: 200, body: { count: 2_345 } });
      await waitFor(() => ran.size === 2_345, { what: "every retried job runs", timeoutMs: 30_000 });
      expect((await call(q, "GET", "/dead?type=bulk.a")).body.jobs).toEqual([]);
      expect((await call(q, "GET", "/dead?type=bulk.b")).body.jobs).toHaveLength(3);
      expect(await call(q, "DELETE", "/dead?type=bulk.b")).toEqual({ status: 200, body: { count: 3 } });
      for (const id of others) expect((await call(q, "GET", `/jobs/${id}`)).status).toBe(404);
      expect(await call(q, "POST", "/dead/retry?type=bulk.b")).toEqual({ status: 200, body: { count: 0 } });
      await q.shutdown(1000);
    });
  });
}

/** The embedded store allows one open store per file: close the seeding one before the queue opens its own. */
async function closeIfSqlite(kind: string, store: TestStore): Promise<void> {
  if (kind === "sqlite") await store.close();
}
