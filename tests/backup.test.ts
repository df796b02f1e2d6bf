// backup.test.ts: the embedded store's snapshot while writers commit: a whole transaction-consistent
// database (each committed batch in it entirely or not at all, every job committed before the call),
// the file still locked to its process afterwards, close() during a copy, copies side by side; and
// GET /admin/backup over the real app (length and SHA-256 headers, HEAD refused, PostgreSQL's 409).
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { StoreUnavailableError } from "../src/errors.ts";
import type { NewJob } from "../src/store/rows.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import type { Snapshot } from "../src/store/store.ts";
import { call, startQueue, storeSite } from "./support/queues.ts";

const dir = mkdtempSync(join(tmpdir(), "jq-backup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `jobs-${++files}.db`);

const BATCH = 50;
/** A payload large enough that a few thousand jobs make a file copied in many chunks. */
const PAYLOAD = JSON.stringify({ text: "x".repeat(20_000) });
const batchOf = (n: number, runAt = 1): NewJob[] =>
  Array.from({ length: n }, () => ({ type: "t", payload: PAYLOAD, priority: 0, maxAttempts: 3, runAt, timeoutMs: null }));

/** Reads a snapshot's stream into a file, checking it against the length and SHA-256 it came with. */
async function saveSnapshot(snapshot: Snapshot, path: string): Promise<void> {
  const bytes = new Uint8Array(await new Response(snapshot.stream).arrayBuffer());
  expect(bytes.byteLength).toBe(snapshot.bytes);
  expect(createHash("sha256").update(bytes).digest("hex")).toBe(snapshot.sha256);
  await Bun.write(path, bytes);
}

function openCopy(path: string): Database {
  const db = new Database(path, { readwrite: true, create: false });
  expect(db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()!.integrity_check).toBe("ok");
  return db;
}

const STORE_MODULE = resolve(import.meta.dir, "../src/store/sqlite/index.ts");
/** Whether another process can open the file as a store now: "opened" or "locked". */
async function childOpens(path: string): Promise<string> {
  const child = Bun.spawn([process.execPath, "-e", `
    import { createSqliteStore } from ${JSON.stringify(STORE_MODULE)};
    try { const s = createSqliteStore({ path: ${JSON.stringify(path)} }); console.log("opened"); await s.close(); }
    catch (err) { console.log(err?.name === "StoreLockedError" ? "locked" : "error " + err); }`], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(child.stdout).text();
  await child.exited;
  return out.trim();
}

/** Yield to the event loop (timers and I/O), not only to other promises. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("the embedded store's snapshot", () => {
  test("taken while writers commit, it holds every job committed before the call, and each batch entirely or not at all", async () => {
    const path = freshPath();
    const store = createSqliteStore({ path, synchronous: "NORMAL" });
    await store.migrate();
    for (let i = 0; i < 10; i++) await store.insert(batchOf(BATCH), 1); // ~10 MB: a copy of several chunks
    const before = (await store.counts()).pending;

    // A writer committing batches of BATCH jobs one event-loop turn after another, all through the copy.
    let stop = false;
    let commitsDuringCopy = 0;
    let copying = false;
    const writer = (async () => {
      while (!stop) {
        await store.insert(batchOf(BATCH), 1);
        if (copying) commitsDuringCopy++;
        await turn();
      }
    })();
    await turn();
    copying = true;
    const snapshot = await store.snapshot();
    copying = false;
    stop = true;
    await writer;
    const after = (await store.counts()).pending;
    await store.close();

    const copyPath = freshPath();
    await saveSnapshot(snapshot, copyPath);
    const copy = openCopy(copyPath);
    const ids = copy.query<{ id: number }, []>("SELECT id FROM pending_jobs ORDER BY id").all().map((r) => r.id);
    copy.close();
    // Ids are handed out in commit order, BATCH a transaction: a consistent copy is ids 1..n, n a
    // whole number of batches, with every job committed before the call.
    expect(ids.length).toBeGreaterThanOrEqual(before);
    expect(ids.length % BATCH).toBe(0);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    // The writer really did commit while the copy was being made, and the copy left those out or in whole.
    expect(commitsDuringCopy).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(ids.length - BATCH);
  });

  test("after a snapshot the file is still locked to its process: the copy's reads never drop the lock", async () => {
    const path = freshPath();
    const store = createSqliteStore({ path });
    try {
      await store.migrate();
      await store.insert(batchOf(3), 1);
      await new Response((await store.snapshot()).stream).arrayBuffer();
      await new Response((await store.snapshot()).stream).arrayBuffer();
      expect(await childOpens(path)).toBe("locked");
      // And the store keeps working.
      expect((await store.insert(batchOf(1), 1))[0]).toBe(4);
    } finally {
      await store.close();
    }
    expect(await childOpens(path)).toBe("opened");
  });

  test("two snapshots asked for at once are each whole", async () => {
    const path = freshPath();
    const store = createSqliteStore({ path });
    await store.migrate();
    await store.insert(batchOf(200), 1);
    const [a, b] = await Promise.all([store.snapshot(), store.snapshot()]);
    await store.insert(batchOf(1), 1);
    await store.close();
    for (const snapshot of [a!, b!]) {
      const copyPath = freshPath();
      await saveSnapshot(snapshot, copyPath);
      const copy = openCopy(copyPath);
      expect(copy.query<{ n: number }, []>("SELECT count(*) AS n FROM pending_jobs").get()!.n).toBe(200);
      copy.close();
    }
  });

  test("close() during a snapshot waits for the copy to stop, and the file opens again whole", async () => {
    const path = freshPath();
    const store = createSqliteStore({ path });
    await store.migrate();
    for (let i = 0; i < 40; i++) await store.insert(batchOf(BATCH), 1);
    const taking = store.snapshot().then((s) => s, (err: unknown) => err);
    await store.close();
    const outcome = await taking;
    if (outcome instanceof Error) expect(outcome).toBeInstanceOf(StoreUnavailableError);
    else {
      // The copy got there first: it is whole.
      const copyPath = freshPath();
      await saveSnapshot(outcome as Snapshot, copyPath);
      openCopy(copyPath).close();
    }
    const again = createSqliteStore({ path });
    try {
      await again.migrate();
      expect((await again.counts()).pending).toBe(40 * BATCH);
    } finally {
      await again.close();
    }
    openCopy(path).close();
  });

  test("a closed store refuses a snapshot", async () => {
    const store = createSqliteStore({ path: freshPath() });
    await store.migrate();
    await store.close();
    expect(store.snapshot()).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});

describe("GET /admin/backup", () => {
  test("streams the embedded store's database with its length and SHA-256, and refuses HEAD", async () => {
    const site = await storeSite("sqlite");
    const q = await startQueue(site.open(), { noop: () => {} }, { keepCompletedMs: 60_000 });
    try {
      const submitted = await call(q, "POST", "/submit", { type: "noop", payload: { n: 1 }, idempotencyKey: "once" });
      expect(submitted.status).toBe(202);
      const res = await q.app.request("/admin/backup");
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/vnd.sqlite3");
      expect(res.headers.get("content-disposition")).toMatch(/^attachment; filename="jobqueue-[0-9TZ-]+\.db"$/);
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(bytes.byteLength).toBe(Number(res.headers.get("x-backup-bytes")));
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(res.headers.get("x-backup-sha256")!);
      const copyPath = freshPath();
      await Bun.write(copyPath, bytes);
      const copy = openCopy(copyPath);
      expect(copy.query<{ job_id: number }, []>("SELECT job_id FROM idempotency_keys WHERE key = 'once'").get()?.job_id).toBe(Number(submitted.body.id));
      copy.close();

      const head = await q.app.request("/admin/backup", { method: "HEAD" });
      expect(head.status).toBe(405);
      const post = await q.app.request("/admin/backup", { method: "POST" });
      expect(post.status).toBe(405);
      expect(post.headers.get("allow")).toBe("GET");
    } finally {
      await q.shutdown(1000);
      await site.drop();
    }
  });

  test("a server on PostgreSQL refuses with 409 backup_unsupported, naming pg_dump", async () => {
    const site = await storeSite("postgres");
    const q = await startQueue(site.open(), { noop: () => {} });
    try {
      const res = await call(q, "GET", "/admin/backup");
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe("backup_unsupported");
      expect(res.body.error.message).toContain("pg_dump");
    } finally {
      await q.shutdown(1000);
      await site.drop();
    }
  });
});
