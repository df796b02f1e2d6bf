// postgres-driver.test.ts: the PostgreSQL driver (postgres.js 3.4.9 with patches/postgres@3.4.9.patch)
// on the store's own connection settings, against a real PostgreSQL whose backends are terminated
// just as statements go out. Without the patch, a connection whose socket closed while a small
// write waited for its turn kept that write's timer and bytes: every later reconnect of it sent
// nothing and failed with CONNECT_TIMEOUT, for good; and a statement queued after the socket's
// error but before its close was never answered at all; and a transaction's next statement on a
// connection that had closed threw from a timer (an uncaught TypeError) and poisoned it the same way;
// and a backend terminated while a new connection fetched its array types left an unhandled rejection
// (bun test fails a test for one).
import postgres from "postgres";
import { expect, test } from "bun:test";
import { createConnection } from "../src/store/postgres/connection.ts";
import { createTestDatabase } from "./support/pg.ts";

/** Cycles of terminate-then-query; unpatched, the connection was poisoned within the first few. */
const CYCLES = 100;
/** A statement still unanswered after this long never will be (twice the connect timeout). */
const NO_ANSWER_MS = 10_000;
/**
 * Tries per cycle, 20 ms apart: the first few may meet the dying session (its reset, its close,
 * its backend's last words, 57P01, delivered to whichever statement is out), then one must
 * reconnect and answer.
 */
const TRIES = 5;

test("a connection whose backend is terminated as a statement goes out fails that statement, and the next one reconnects and answers", async () => {
  const db = await createTestDatabase("jq_driver");
  const name = new URL(db.url).pathname.slice(1);
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  const store = createConnection({ url: db.url });
  // One connection of the store's own making (a node id's session is such a pool of one).
  const conn = store.open(1);
  const outcomes = new Map<string, number>();
  const unanswered: string[] = [];
  let cuts = 0;
  try {
    await conn`SELECT 1`;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      cuts = cycle + 1;
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = ${name} AND application_name = 'jobqueue'`;
      // Race the backend's exit: some statements leave before the close arrives, some after.
      await Bun.sleep(Math.random() * 5);
      const tries: string[] = [];
      while (tries.length < TRIES && tries.at(-1) !== "ok") {
        if (tries.length > 0) await Bun.sleep(20);
        const got = await Promise.race([
          conn`SELECT pg_backend_pid() AS pid`.then(() => "ok", (e: { code?: string }) => e.code ?? String(e)),
          Bun.sleep(NO_ANSWER_MS).then(() => "no answer"),
        ]);
        outcomes.set(got, (outcomes.get(got) ?? 0) + 1);
        tries.push(got);
      }
      if (tries.at(-1) !== "ok") unanswered.push(`cycle ${cycle}: ${tries.join(", ")}`);
      if (unanswered.length > 0) break; // one poisoned connection is the finding: stop there
    }
  } finally {
    await conn.end({ timeout: 1 });
    await store.close();
    await admin.end();
    await db.drop();
  }
  console.log(`driver: ${cuts} cuts, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
  expect(outcomes.get("no answer") ?? 0).toBe(0);
  expect(outcomes.get("CONNECT_TIMEOUT") ?? 0).toBe(0);
  expect(unanswered).toEqual([]);
  expect(outcomes.get("ok")).toBe(CYCLES);
}, 60_000);

test("transactions whose backends are terminated under them fail, never throw outside, and leave no connection that cannot come back", async () => {
  const db = await createTestDatabase("jq_drivertx");
  const name = new URL(db.url).pathname.slice(1);
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  const store = createConnection({ url: db.url });
  const uncaught: string[] = [];
  const onUncaught = (err: unknown) => void uncaught.push(String(err));
  process.on("uncaughtException", onUncaught);
  const outcomes = new Map<string, number>();
  let running = true;
  try {
    // Several statements per transaction, as a keyed submit or a weighed claim has.
    const loops = Array.from({ length: 6 }, async () => {
      while (running) {
        const got = await store.begin(async (tx) => {
          await tx.query("SELECT 1 AS one");
          await tx.query("SELECT pg_sleep(0.001)");
          await tx.query("SELECT 2 AS two");
        }).then(() => "ok", (e: { code?: string }) => e.code ?? String(e));
        outcomes.set(got, (outcomes.get(got) ?? 0) + 1);
        if (got !== "ok") await Bun.sleep(5);
      }
    });
    for (let cut = 0; cut < 120; cut++) {
      await Bun.sleep(20 + Math.random() * 40);
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = ${name} AND application_name = 'jobqueue'`;
    }
    running = false;
    await Promise.all(loops);
    // Afterwards every connection of the pool answers: ten at once take all ten.
    const after = await Promise.all(Array.from({ length: 10 }, () =>
      store.begin(async (tx) => (await tx.query<{ one: number }>("SELECT 1 AS one, pg_sleep(0.05)"))[0]!.one).catch((e: { code?: string }) => e.code ?? String(e))));
    expect(after).toEqual(Array.from({ length: 10 }, () => 1));
  } finally {
    running = false;
    process.off("uncaughtException", onUncaught);
    await store.close();
    await admin.end();
    await db.drop();
  }
  console.log(`driver transactions: outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`);
  expect(uncaught).toEqual([]);
  expect(outcomes.get("CONNECT_TIMEOUT") ?? 0).toBe(0);
  expect(outcomes.get("ok") ?? 0).toBeGreaterThan(0);
}, 60_000);
