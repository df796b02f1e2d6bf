// store.postgres.test.ts: the Store contract against a real PostgreSQL (a fresh database).
import { createPostgresStore } from "../src/store/postgres.ts";
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
