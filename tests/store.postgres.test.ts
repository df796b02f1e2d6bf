// store.postgres.test.ts: the Store contract against a real PostgreSQL (a fresh database).
import { existsSync } from "node:fs";
import postgres from "postgres";
import { createPostgresStore, socketOf } from "../src/store/postgres/index.ts";
import { lockNodeId } from "../src/store/postgres/cluster.ts";
import type { Sql } from "../src/store/postgres/connection.ts";
import { expect, test } from "bun:test";
import { NodeIdInUseError } from "../src/errors.ts";
import { runStoreContract } from "./store.contract.ts";
import { waitFor } from "./support/wait.ts";
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

test("taking a node id again ends this process's former session for it, busy or not, and no one else's", async () => {
  const db = await createTestDatabase("jq_nodeformer");
  const own = (max = 1) => postgres(db.url, { max, onnotice: () => {} }) as unknown as Sql;
  const former = own(), fresh = own(), other = own(), admin = own(2);
  const live = async (pid: number) =>
    (await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`)[0]!.n === 1;
  try {
    const formerPid = await lockNodeId("n1", former);
    // A session busy in a statement keeps its lock until it is ended.
    const busy = former`SELECT pg_sleep(30)`.catch((e: unknown) => e);
    await expect(lockNodeId("n1", fresh)).rejects.toBeInstanceOf(NodeIdInUseError);
    const freshPid = await lockNodeId("n1", fresh, formerPid);
    expect(freshPid).not.toBe(formerPid);
    expect(await busy).toBeInstanceOf(Error);
    expect(await live(formerPid)).toBe(false);
    // Only the named former session is ended: a lock held by any other session stays with it.
    const otherPid = await lockNodeId("n2", other);
    await expect(lockNodeId("n2", fresh, freshPid)).rejects.toBeInstanceOf(NodeIdInUseError);
    await expect(lockNodeId("n2", fresh, otherPid + 1)).rejects.toBeInstanceOf(NodeIdInUseError);
    expect(await live(otherPid)).toBe(true);
    expect(await live(freshPid)).toBe(true);
  } finally {
    for (const c of [former, fresh, other, admin]) await c.end({ timeout: 1 }).catch(() => {});
    await db.drop();
  }
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

test("a node id is held by one store at a time, taken again after its session was cut, and lost to whoever took it meanwhile", async () => {
  const db = await createTestDatabase("jq_nodelock");
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  const a = createPostgresStore({ url: db.url });
  const b = createPostgresStore({ url: db.url });
  const lockHolders = async () =>
    (await admin<{ pid: number }[]>`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted`).map((r) => r.pid);
  try {
    await a.migrate();
    await a.holdNodeId("n1");
    await expect(b.holdNodeId("n1")).rejects.toBeInstanceOf(NodeIdInUseError);
    await b.holdNodeId("n2"); // other ids are free
    // Cut a's lock session: its next heartbeat takes the id again on a new session.
    const [before] = await admin<{ pid: number }[]>`
      SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
      AND (l.classid::bigint << 32) | l.objid::bigint = hashtextextended('jobqueue.node:n1', 0)`;
    await admin`SELECT pg_terminate_backend(${before!.pid})`;
    await waitFor(async () => !(await lockHolders()).includes(before!.pid), { what: "the old session gone" });
    // The first heartbeat after the cut holds the id again, whether the driver noticed the cut
    // (a new session) or meets it now (the session is replaced by a connection of its own).
    expect(await a.heartbeatNode("n1", Date.now(), 0)).toBeGreaterThanOrEqual(1);
    expect(await lockHolders()).toHaveLength(2);
    await expect(b.holdNodeId("n1")).rejects.toBeInstanceOf(NodeIdInUseError);
    // Cut it again, and let another store take the id first: a's heartbeat then reports it lost.
    const [again] = await admin<{ pid: number }[]>`
      SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
      AND (l.classid::bigint << 32) | l.objid::bigint = hashtextextended('jobqueue.node:n1', 0)`;
    await admin`SELECT pg_terminate_backend(${again!.pid})`;
    await waitFor(async () => !(await lockHolders()).includes(again!.pid), { what: "the second session gone" });
    const c = createPostgresStore({ url: db.url });
    await c.holdNodeId("n1");
    const lost = await waitFor(async () => {
      const err = await a.heartbeatNode("n1", Date.now(), 0).then(() => null, (e: unknown) => e);
      return err instanceof NodeIdInUseError ? err : null;
    }, { what: "the heartbeat to report the id lost" });
    expect(lost.message).toContain('node id "n1" is held by another live jobqueue process');
    await c.close();
    // A closed store lets go of its id at once.
    await b.close();
    const d = createPostgresStore({ url: db.url });
    await d.holdNodeId("n2");
    await d.close();
  } finally {
    await a.close();
    await b.close().catch(() => {});
    await admin.end();
    await db.drop();
  }
});
