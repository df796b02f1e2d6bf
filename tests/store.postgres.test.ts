// store.postgres.test.ts: the Store contract against a real PostgreSQL (a fresh database).
import { existsSync } from "node:fs";
import postgres from "postgres";
import { createPostgresStore, socketOf } from "../src/store/postgres.ts";
import { expect, test } from "bun:test";
import { runStoreContract } from "./store.contract.ts";
import { createTestDatabase } from "./support/pg.ts";

runStoreContract("postgres", () => {
  let drop = async () => {};
  return {
    async open() {
      const db = await createTestDatabase("jq_store");
      drop = db.drop;
      const store = createPostgresStore({ url: db.url });
      await store.migrate();
      return store;
    },
    cleanup: () => drop(),
  };
});

test("a new-job hint from one process reaches the others' listeners, not its own", async () => {
  const db = await createTestDatabase("jq_notify");
  const a = createPostgresStore({ url: db.url });
  const b = createPostgresStore({ url: db.url });
  await a.migrate();
  let heardByA = 0;
  let heardByB = 0;
  let onA: () => void = () => {};
  let onB: () => void = () => {};
  const aHeard = new Promise<void>((r) => (onA = r));
  const bHeard = new Promise<void>((r) => (onB = r));
  const stopA = await a.listen(() => {
    heardByA++;
    onA();
  });
  const stopB = await b.listen(() => {
    heardByB++;
    onB();
  });
  await a.announce(Date.now());
  await bHeard;
  // Notifications reach a listener in commit order: had A heard its own hint, it would have
  // arrived before B's, so A's count is 2 by the time B's hint lands.
  await b.announce(Date.now());
  await aHeard;
  await Bun.sleep(0);
  expect(heardByB).toBe(1);
  expect(heardByA).toBe(1);
  for (const stop of [stopA, stopB]) await stop();
  await a.close();
  await b.close();
  await db.drop();
});

test("a libpq-style ?host=/dir names the server's Unix socket; other URLs pass through untouched", () => {
  expect(socketOf("postgres://app@localhost/jobs?host=/var/run/postgresql")).toEqual({
    url: "postgres://app@localhost/jobs", path: "/var/run/postgresql/.s.PGSQL.5432",
  });
  expect(socketOf("postgres://app:pw@localhost:6543/jobs?host=/tmp/&sslmode=disable")).toEqual({
    url: "postgres://app:pw@localhost:6543/jobs?sslmode=disable", path: "/tmp/.s.PGSQL.6543",
  });
  expect(socketOf("postgres://app@db.internal/jobs")).toEqual({ url: "postgres://app@db.internal/jobs" });
  expect(socketOf("postgres://app@db.internal/jobs?host=db2")).toEqual({ url: "postgres://app@db.internal/jobs?host=db2" });
});

const SOCKET_DIR = "/var/run/postgresql";
test.skipIf(!existsSync(`${SOCKET_DIR}/.s.PGSQL.5432`))("the store works over the local Unix socket named by ?host=", async () => {
  const db = await createTestDatabase("jq_socket");
  const u = new URL(db.url);
  u.hostname = "localhost";
  u.searchParams.set("host", SOCKET_DIR);
  const store = createPostgresStore({ url: u.toString() });
  try {
    await store.migrate();
    const [id] = await store.insert([{ type: "t", payload: "{}", priority: 0, maxAttempts: 1, runAt: 0, timeoutMs: null }], 0);
    expect((await store.get(id!, 0))?.state).toBe("pending");
    // Proof it did not fall back to TCP: a socket connection has no server address.
    const probe = postgres({ path: `${SOCKET_DIR}/.s.PGSQL.5432`, database: u.pathname.slice(1), username: u.username, max: 1 });
    try {
      const rows = await probe<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${u.pathname.slice(1)} AND client_port = -1 AND application_name = 'jobqueue'`;
      expect(rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await probe.end();
    }
  } finally {
    await store.close();
    await db.drop();
  }
});
