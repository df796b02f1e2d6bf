// races.fault.ts: the reaper racing late completions, retries and lease extensions, thousands of
// times, on each store: no job resurrected, none moved twice, every job in exactly one place.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPostgresStore } from "../../src/store/postgres/index.ts";
import { createSqliteStore } from "../../src/store/sqlite/index.ts";
import type { Store, StoreTestHooks } from "../../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import { job } from "../store.contract.ts";
import { createTestDatabase } from "../support/pg.ts";

const ROUNDS = 10;
const PER_ROUND = 500;
const T0 = 1_700_000_000_000;
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

const stores: Array<[string, () => Promise<TestStore[]>]> = [
  ["postgres", async () => {
    const db = await createTestDatabase("jq_races");
    const stores = [createPostgresStore({ url: db.url }), createPostgresStore({ url: db.url })];
    cleanups.push(async () => {
      for (const s of stores) await s.close();
      await db.drop();
    });
    return stores;
  }],
  ["sqlite", async () => {
    const s = createSqliteStore({ path: join(mkdtempSync(join(tmpdir(), "jq-races-")), "j.db") });
    cleanups.push(() => s.close());
    return [s, s];
  }],
];

for (const [name, open] of stores) {
  describe(name, () => {
    test(`${ROUNDS * PER_ROUND} settles raced against the reaper: exactly one side wins each job`, async () => {
      const [a, b] = await open();
      await a!.migrate();
      let completedWins = 0, retryWins = 0, reaperWins = 0, extendWins = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const now = T0 + round * 100_000;
        const ids = await a!.insert(Array.from({ length: PER_ROUND }, () => job({ runAt: now, maxAttempts: 5 })), now);
        (await a!.claim(ids, "racer", now, 1000)).jobs; // leases end at now + 1000
        const refs = ids.map((id) => ({ id, attempt: 1 }));
        const third = Math.floor(PER_ROUND / 3);
        const moves: Array<() => Promise<unknown>> = [
          () => a!.complete(refs.slice(0, third)),
          () => a!.retry(refs.slice(third, 2 * third).map((r) => ({ ...r, runAt: now + 5000, error: "late retry" }))),
          () => a!.extendLeases(refs.slice(2 * third), "racer", now + 60_000),
          ...Array.from({ length: 6 }, () => () => b!.reapExpired(now + 2000, 100)),
        ];
        // Start them in a random order each round (the embedded store runs calls in start order).
        const order = moves.map((_, i) => i).sort(() => Math.random() - 0.5);
        const results: unknown[] = new Array(moves.length);
        await Promise.all(order.map(async (i) => (results[i] = await moves[i]!())));
        const [done, retried, extended, ...reaps] = results as [boolean[], boolean[], boolean[], ...{ id: number }[][]];
        const reaped = new Set(reaps.flat().map((e) => e.id));
        expect(reaps.flat().length).toBe(reaped.size); // no job reaped twice
        const settled = [...done!, ...retried!];
        for (let i = 0; i < 2 * third; i++) {
          expect(settled[i]! !== reaped.has(ids[i]!), `job ${ids[i]} settled=${settled[i]} reaped=${reaped.has(ids[i]!)}`).toBe(true);
        }
        for (let i = 2 * third; i < PER_ROUND; i++) {
          // An extension that won keeps the job; one that lost means the reaper had it.
          expect(extended![i - 2 * third]! !== reaped.has(ids[i]!)).toBe(true);
        }
        // Each job is now in exactly the place its winner put it.
        for (let i = 0; i < PER_ROUND; i++) {
          const v = await a!.get(ids[i]!, now + 2000);
          if (reaped.has(ids[i]!)) expect(v).toMatchObject({ state: "pending", attempts: 1 });
          else if (i < third) expect(v).toBeNull();
          else if (i < 2 * third) expect(v).toMatchObject({ state: "scheduled", lastError: "late retry" });
          else expect(v).toMatchObject({ state: "inflight", leaseUntil: now + 60_000 });
        }
        completedWins += done!.filter(Boolean).length;
        retryWins += retried!.filter(Boolean).length;
        extendWins += extended!.filter(Boolean).length;
        reaperWins += reaped.size;
        // Clear the round: everything left is claimed and completed, fenced by its attempt.
        const left = (await a!.claim(ids, "racer", now + 10_000, 1000)).jobs;
        await a!.complete(left.map((j) => ({ id: j.id, attempt: j.attempts })));
        const stillInflight = ids.filter((_, i) => i >= 2 * third && !reaped.has(ids[i]!));
        await a!.complete(stillInflight.map((id) => ({ id, attempt: 1 })));
        expect((await a!.counts()).pending + (await a!.counts()).inflight).toBe(0);
      }
      console.log(`races ${name}: ${JSON.stringify({ completedWins, retryWins, extendWins, reaperWins })}`);
    }, 300_000);
  });
}
