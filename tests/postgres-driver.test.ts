// postgres-driver.test.ts: the PostgreSQL driver (postgres.js 3.4.9 with patches/postgres@3.4.9.patch)
// on the store's own connection settings, against a real PostgreSQL whose backends are terminated
// just as statements go out. Without the patch, a connection whose socket closed while a small
// write waited for its turn kept that write's timer and bytes: every later reconnect of it sent
// nothing and failed with CONNECT_TIMEOUT, for good; and a statement queued after the socket's
// error but before its close was never answered at all.
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
