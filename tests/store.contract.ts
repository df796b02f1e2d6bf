// store.contract.ts: the one conformance suite every Store implementation must pass
// (run by store.postgres.test.ts and, for the embedded store, store.sqlite.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Store, StoreTestHooks } from "../src/store/store.ts";

/** A store with the hooks only tests use (insert by ids, table counts). */
type TestStore = Store & StoreTestHooks;
import type { JobQuery, ListOrder, NewJob } from "../src/store/rows.ts";
import type { FlowLimit, FlowLimits } from "../src/store/flow-plan.ts";
import { waitFor } from "./support/wait.ts";

export interface StoreHarness {
  /** A fresh, migrated, empty store. */
  open(): Promise<TestStore>;
  /** Drops whatever open() created. */
  cleanup(): Promise<void>;
}

const T0 = 1_700_000_000_000;
const LEASE = 30_000;

export function job(over: Partial<NewJob> = {}): NewJob {
  return { type: "t", payload: '{"n":1}', priority: 0, maxAttempts: 3, runAt: T0, timeoutMs: null, ...over };
}

export function runStoreContract(name: string, harness: () => StoreHarness) {
  describe(`Store contract: ${name}`, () => {
    let h: StoreHarness;
    let store: TestStore;
    beforeAll(async () => {
      h = harness();
      store = await h.open();
    });
    afterAll(async () => {
      await store.close();
      await h.cleanup();
    });

    test("migrating twice at once is harmless", async () => {
      await Promise.all([store.migrate(), store.migrate()]);
      await store.migrate();
    });

    test("insert returns one increasing id per job in input order and keeps every field", async () => {
      const ids = await store.insert([job({ type: "a" }), job({ type: "b", priority: 7, timeoutMs: 1234 }), job({ type: "c" })], T0);
      expect(ids).toHaveLength(3);
      expect(ids[0]! < ids[1]! && ids[1]! < ids[2]!).toBe(true);
      const b = await store.get(ids[1]!, T0);
      expect(b).toMatchObject({ id: ids[1], type: "b", state: "pending", priority: 7, attempts: 0, maxAttempts: 3, runAt: T0, createdAt: T0, lastError: null });
      expect(JSON.parse(b!.payload)).toEqual({ n: 1 });
      expect((await store.get(ids[0]!, T0))!.type).toBe("a");
      expect((await store.get(ids[2]!, T0))!.type).toBe("c");
    });

    test("times with sub-millisecond parts come back exactly as they went in, down to the µs", async () => {
      // Whole µs as ms (what a clock corrected by a measured offset gives): the stores keep µs.
      const times = [T0 * 1000 + 1, T0 * 1000 + 3, T0 * 1000 + 123_456, 7_000_000_000_000_789, 946_684_800_000_000 - 999].map((us) => us / 1000);
      const ids = await store.insert(times.map((t) => job({ runAt: t })), times[0]!);
      for (const [i, id] of ids.entries()) expect((await store.get(id, T0))!.runAt).toBe(times[i]!);
      const streamed = new Map<number, number>();
      for await (const batch of store.streamPending(100)) for (const e of batch) streamed.set(e.id, e.runAt);
      expect(ids.map((id) => streamed.get(id))).toEqual(times);
      expect(streamed.get(ids[0]!)).toBe(times[0]!);
      for (const id of ids) expect(await store.cancelPending([id])).toEqual([true]);
    });

    test("a job due later reads as scheduled, then pending once due", async () => {
      const [id] = await store.insert([job({ runAt: T0 + 60_000 })], T0);
      expect((await store.get(id!, T0))!.state).toBe("scheduled");
      expect((await store.get(id!, T0 + 60_000))!.state).toBe("pending");
    });

    test("claim moves due jobs to inflight, counts the attempt, and skips missing or not-due ids", async () => {
      const [a, b, later] = await store.insert([job(), job({ payload: '"x"' }), job({ runAt: T0 + 10_000 })], T0);
      const claimed = (await store.claim([a!, b!, later!, 999_999_999], "node-1", T0 + 1, LEASE)).jobs;
      expect(claimed.map((j) => j.id).sort((x, y) => x - y)).toEqual([a!, b!]);
      expect(claimed.every((j) => j.attempts === 1)).toBe(true);
      expect(claimed.find((j) => j.id === b)!.payload).toBe('"x"');
      const view = await store.get(a!, T0 + 1);
      expect(view).toMatchObject({ state: "inflight", attempts: 1, owner: "node-1", leaseUntil: T0 + 1 + LEASE });
      expect((await store.get(later!, T0 + 1))!.state).toBe("scheduled");
      // A second claim of the same ids gets nothing: someone else holds them.
      expect((await store.claim([a!, b!], "node-2", T0 + 2, LEASE)).jobs).toEqual([]);
    });

    test("a job inserted with a lease starts inflight as its first attempt, beside pending ones in the same call", async () => {
      const lease = { owner: "node-1", until: T0 + LEASE };
      const ids = await store.insert([job({ type: "p" }), job({ type: "s", payload: '"go"', lease }), job({ type: "p2" })], T0);
      expect(ids[0]! < ids[1]! && ids[1]! < ids[2]!).toBe(true);
      expect(await store.get(ids[1]!, T0)).toMatchObject({
        id: ids[1], type: "s", state: "inflight", attempts: 1, owner: "node-1", leaseUntil: T0 + LEASE, createdAt: T0, runAt: T0, payload: '"go"',
      });
      expect((await store.get(ids[0]!, T0))!.state).toBe("pending");
      expect((await store.get(ids[2]!, T0))!.state).toBe("pending");
      // It is not pending, so no claim can take it a second time; its attempt is fenced like a claim's.
      expect((await store.claim([ids[1]!], "node-2", T0, LEASE)).jobs).toEqual([]);
      expect(await store.complete([{ id: ids[1]!, attempt: 0 }])).toEqual([false]);
      expect(await store.complete([{ id: ids[1]!, attempt: 1 }])).toEqual([true]);
      expect(await store.get(ids[1]!, T0)).toBeNull();
    });

    test("a leased job whose process dies comes back through the reaper with its attempt counted", async () => {
      const [id] = await store.insert([job({ maxAttempts: 2, lease: { owner: "gone", until: T0 + 10 } })], T0);
      const back = await store.reapExpired(T0 + 11, 100);
      expect(back.map((e) => e.id)).toContain(id!);
      expect(await store.get(id!, T0 + 11)).toMatchObject({ state: "pending", attempts: 1 });
      // An idempotency key taken with a leased insert is held like any other, and a duplicate starts nothing.
      const [k1] = await store.add([job({ idempotencyKey: "lease-k", lease: { owner: "n", until: T0 + LEASE } })], T0);
      expect(await store.get(k1!.id, T0)).toMatchObject({ state: "inflight", attempts: 1, owner: "n" });
      const [k2] = await store.add([job({ idempotencyKey: "lease-k", lease: { owner: "m", until: T0 + LEASE } })], T0);
      expect(k2).toEqual({ id: k1!.id, duplicate: true });
      expect(await store.get(k1!.id, T0)).toMatchObject({ owner: "n" });
    });

    test("complete removes the job only for the claim it names", async () => {
      const [id] = await store.insert([job()], T0);
      const [c] = (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect(await store.complete([{ id: id!, attempt: 99 }])).toEqual([false]);
      expect(await store.complete([{ id: id!, attempt: c!.attempts }])).toEqual([true]);
      expect(await store.get(id!, T0)).toBeNull();
      expect(await store.complete([{ id: id!, attempt: c!.attempts }])).toEqual([false]);
    });

    test("retry hands the job back with its run time and error, attempts kept", async () => {
      const [id] = await store.insert([job()], T0);
      (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect(await store.retry([{ id: id!, attempt: 1, runAt: T0 + 5000, error: "boom" }])).toEqual([true]);
      expect(await store.get(id!, T0)).toMatchObject({ state: "scheduled", attempts: 1, runAt: T0 + 5000, lastError: "boom" });
      expect(await store.retry([{ id: id!, attempt: 1, runAt: T0, error: "again" }])).toEqual([false]);
      const [again] = (await store.claim([id!], "n", T0 + 5000, LEASE)).jobs;
      expect(again!.attempts).toBe(2);
      expect(again!.lastError).toBe("boom");
    });

    test("throttle hands the job back with its run time and error, the attempt not used and one more throttle, fenced", async () => {
      const [id] = await store.insert([job({ key: "k", startBy: T0 + 600_000 })], T0);
      (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect(await store.throttle([{ id: id!, attempt: 2, runAt: T0 + 2000, error: "x" }])).toEqual([false]);
      expect(await store.throttle([{ id: id!, attempt: 1, runAt: T0 + 2000, error: "webhook answered 429" }])).toEqual([true]);
      expect(await store.get(id!, T0)).toMatchObject({
        state: "scheduled", attempts: 0, throttles: 1, runAt: T0 + 2000, lastError: "webhook answered 429", key: "k", startBy: T0 + 600_000,
      });
      expect(await store.throttle([{ id: id!, attempt: 1, runAt: T0, error: "again" }])).toEqual([false]);
      const [again] = (await store.claim([id!], "n", T0 + 2000, LEASE)).jobs;
      expect(again).toMatchObject({ attempts: 1, throttles: 1, lastError: "webhook answered 429" });
      expect(await store.throttle([{ id: id!, attempt: 1, runAt: T0 + 3000, error: "429 again" }])).toEqual([true]);
      const [third] = (await store.claim([id!], "n", T0 + 3000, LEASE)).jobs;
      expect(third).toMatchObject({ attempts: 1, throttles: 2 });
      expect(await store.retry([{ id: id!, attempt: 1, runAt: T0 + 4000, error: "boom" }])).toEqual([true]);
      expect(await store.get(id!, T0 + 4000)).toMatchObject({ state: "pending", attempts: 1, throttles: 2 });
    });

    test("a throttle batch reports per item which took effect", async () => {
      const [a, b, c] = await store.insert([job(), job(), job()], T0);
      (await store.claim([a!, b!, c!], "n", T0, LEASE)).jobs;
      const res = await store.throttle([
        { id: a!, attempt: 1, runAt: T0 + 10, error: "e" }, { id: b!, attempt: 3, runAt: T0 + 10, error: "e" },
        { id: c!, attempt: 1, runAt: T0 + 20, error: "e" }, { id: c!, attempt: 2, runAt: T0 + 20, error: "e" },
      ]);
      expect(res).toEqual([true, false, true, false]);
      expect(await store.get(b!, T0)).toMatchObject({ state: "inflight", attempts: 1, throttles: 0 });
      expect(await store.get(c!, T0 + 20)).toMatchObject({ state: "pending", attempts: 0, throttles: 1 });
      expect(await store.complete([{ id: b!, attempt: 1 }])).toEqual([true]);
      await store.cancelPending([a!, c!]);
    });

    test("bury moves the job to dead with its error, fenced", async () => {
      const [id] = await store.insert([job()], T0);
      (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect(await store.bury([{ id: id!, attempt: 2, error: "x" }], T0)).toEqual([false]);
      expect(await store.bury([{ id: id!, attempt: 1, error: "fatal" }], T0 + 7)).toEqual([true]);
      expect(await store.get(id!, T0)).toMatchObject({ state: "dead", lastError: "fatal", failedAt: T0 + 7, attempts: 1 });
      expect(await store.complete([{ id: id!, attempt: 1 }])).toEqual([false]);
    });

    test("a job's key and deadline travel with it through claim, retry, reap, release and burial; a revived dead job keeps only its key", async () => {
      const key = "tenant-ü-42";
      const deadline = T0 + 600_000;
      const [id, born] = await store.insert([job({ key, startBy: deadline }), job({ key, startBy: deadline, lease: { owner: "n", until: T0 + LEASE } })], T0);
      const fields = { key, startBy: deadline, throttles: 0 };
      expect(await store.get(id!, T0)).toMatchObject(fields);
      expect(await store.get(born!, T0)).toMatchObject({ state: "inflight", ...fields });
      const [c] = (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect(c).toMatchObject(fields);
      expect(await store.retry([{ id: id!, attempt: 1, runAt: T0 + 10, error: "e" }])).toEqual([true]);
      expect(await store.get(id!, T0 + 10)).toMatchObject({ state: "pending", ...fields });
      expect((await store.claim([id!], "n", T0 + 10, LEASE)).jobs[0]).toMatchObject(fields);
      expect((await store.release([{ id: born!, attempt: 1 }], "n", T0 + 20)).map((e) => e.id)).toEqual([born!]);
      expect(await store.get(born!, T0 + 20)).toMatchObject({ state: "pending", ...fields });
      const reaped = await store.reapExpired(T0 + 10 + LEASE + 1, 100);
      expect(reaped.find((e) => e.id === id)).toMatchObject({ key });
      (await store.claim([id!], "n", T0 + LEASE * 2, LEASE)).jobs;
      expect(await store.bury([{ id: id!, attempt: 3, error: "fatal" }], T0 + LEASE * 2)).toEqual([true]);
      expect(await store.get(id!, T0 + LEASE * 2)).toMatchObject({ state: "dead", ...fields });
      const [revived] = await store.retryDead([id!], T0 + LEASE * 3);
      expect(revived).toMatchObject({ id: id!, key });
      expect(await store.get(id!, T0 + LEASE * 3)).toMatchObject({ state: "pending", key, startBy: null, throttles: 0 });
    });

    test("batch moves report per item which took effect", async () => {
      const ids = await store.insert([job(), job(), job()], T0);
      (await store.claim(ids, "n", T0, LEASE)).jobs;
      const res = await store.complete([{ id: ids[0]!, attempt: 1 }, { id: ids[1]!, attempt: 5 }, { id: ids[2]!, attempt: 1 }]);
      expect(res).toEqual([true, false, true]);
      expect(await store.retry([{ id: ids[1]!, attempt: 1, runAt: T0, error: "e" }, { id: ids[0]!, attempt: 1, runAt: T0, error: "e" }])).toEqual([true, false]);
    });

    test("a batch naming a stale attempt beside the running one of the same job reports each claim's own fate", async () => {
      const [a, b, c, d] = await store.insert([job({ maxAttempts: 5 }), job({ maxAttempts: 5 }), job({ maxAttempts: 5 }), job({ maxAttempts: 5 })], T0);
      (await store.claim([a!, b!, c!, d!], "n", T0, LEASE)).jobs;
      const stale = (id: number) => ({ id, attempt: 2 });
      const live = (id: number) => ({ id, attempt: 1 });
      expect(await store.extendLeases([stale(a!), live(a!)], "n", T0 + 60_000)).toEqual([false, true]);
      expect(await store.complete([live(a!), stale(a!)])).toEqual([true, false]);
      expect(await store.retry([{ ...stale(b!), runAt: T0, error: "x" }, { ...live(b!), runAt: T0, error: "e" }])).toEqual([false, true]);
      expect(await store.bury([{ ...live(c!), error: "e" }, { ...stale(c!), error: "x" }], T0)).toEqual([true, false]);
      expect(await store.completeCancelled([stale(d!), live(d!)])).toEqual([false, true]);
      await store.deleteDead([c!]);
      await store.cancelPending([b!]);
    });

    test("extendLeases is fenced by attempt and owner", async () => {
      const [id] = await store.insert([job()], T0);
      (await store.claim([id!], "me", T0, LEASE)).jobs;
      expect(await store.extendLeases([{ id: id!, attempt: 1 }], "other", T0 + 99_000)).toEqual([false]);
      expect(await store.extendLeases([{ id: id!, attempt: 2 }], "me", T0 + 99_000)).toEqual([false]);
      expect(await store.extendLeases([{ id: id!, attempt: 1 }], "me", T0 + 99_000)).toEqual([true]);
      expect((await store.get(id!, T0))!.leaseUntil).toBe(T0 + 99_000);
      // Not expired at the old deadline any more.
      expect((await store.reapExpired(T0 + LEASE + 1, 100)).map((e) => e.id)).not.toContain(id!);
    });

    test("the reaper returns expired leases to pending, attempts kept, and a late completion then does nothing", async () => {
      const [id] = await store.insert([job({ priority: 4 })], T0);
      (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect((await store.reapExpired(T0 + LEASE - 1, 100)).map((e) => e.id)).not.toContain(id!);
      const back = await store.reapExpired(T0 + LEASE + 1, 100);
      expect(back.find((e) => e.id === id)).toEqual({ id: id!, type: "t", priority: 4, runAt: T0 + LEASE + 1, key: null });
      expect(await store.complete([{ id: id!, attempt: 1 }])).toEqual([false]);
      expect(await store.get(id!, T0 + LEASE + 1)).toMatchObject({ state: "pending", attempts: 1 });
      const [again] = (await store.claim([id!], "n", T0 + LEASE + 2, LEASE)).jobs;
      expect(again!.attempts).toBe(2);
      await store.complete([{ id: id!, attempt: 2 }]);
    });

    test("the reaper never brings back a completed job, and a late completion never undoes a reap (raced)", async () => {
      const rounds = 200;
      const ids = await store.insert(Array.from({ length: rounds }, () => job()), T0);
      (await store.claim(ids, "racer", T0, 1000)).jobs;
      const completions = store.complete(ids.map((id) => ({ id, attempt: 1 })));
      const reaps = Promise.all(Array.from({ length: 8 }, () => store.reapExpired(T0 + 5000, 50)));
      const [done, reaped] = await Promise.all([completions, reaps]);
      const reapedIds = new Set(reaped.flat().map((e) => e.id));
      for (let i = 0; i < rounds; i++) {
        const id = ids[i]!;
        const view = await store.get(id, T0 + 5000);
        // Exactly one of the two moves won, and the row is where the winner put it.
        expect(done[i]! !== reapedIds.has(id)).toBe(true);
        if (done[i]) expect(view).toBeNull();
        else expect(view).toMatchObject({ state: "pending", attempts: 1 });
      }
      (await store.claim([...reapedIds], "racer", T0 + 5000, LEASE)).jobs;
      await store.complete([...reapedIds].map((id) => ({ id, attempt: 2 })));
    });

    test("an attempt that never reports back on its final try is dead-lettered, not retried forever", async () => {
      const [byLease, byRestart] = await store.insert([job({ maxAttempts: 1 }), job({ maxAttempts: 1 })], T0);
      (await store.claim([byLease!], "gone", T0, 10)).jobs;
      (await store.claim([byRestart!], "final-owner", T0, LEASE)).jobs;
      expect((await store.reapExpired(T0 + 20, 100)).map((e) => e.id)).not.toContain(byLease!);
      expect(await store.get(byLease!, T0)).toMatchObject({ state: "dead", attempts: 1, lastError: "lease expired on the final attempt", failedAt: T0 + 20 });
      expect(await store.recoverOwner("final-owner", T0 + 30)).toEqual([]);
      expect(await store.get(byRestart!, T0)).toMatchObject({ state: "dead", lastError: "interrupted by a restart on the final attempt" });
    });

    test("concurrent claims of the same ids hand each job to exactly one claimer", async () => {
      const ids = await store.insert(Array.from({ length: 100 }, () => job()), T0);
      const results = await Promise.all(Array.from({ length: 5 }, (_, k) => store.claim(ids, `n${k}`, T0, LEASE).then((r) => r.jobs)));
      const all = results.flat().map((j) => j.id).sort((a, b) => a - b);
      expect(all).toEqual([...ids].sort((a, b) => a - b));
      await store.complete(all.map((id) => ({ id, attempt: 1 })));
    });

    test("a schedule's tick is enqueued once: again, or after a later one, it inserts nothing; concurrent offers agree", async () => {
      const tick = T0 + 3_600_000;
      const a = await store.enqueueTick("nightly", tick, job({ type: "report", key: "k" }), T0);
      expect(a).not.toBeNull();
      expect(await store.get(a!, T0)).toMatchObject({ type: "report", state: "pending", key: "k" });
      expect(await store.enqueueTick("nightly", tick, job({ type: "report" }), T0 + 1)).toBeNull();
      const later = await store.enqueueTick("nightly", tick + 60_000, job({ type: "report" }), T0 + 2);
      expect(later).not.toBeNull();
      expect(await store.enqueueTick("nightly", tick, job({ type: "report" }), T0 + 3)).toBeNull();
      const offers = await Promise.all(Array.from({ length: 6 }, () => store.enqueueTick("nightly", tick + 120_000, job({ type: "report" }), T0 + 4)));
      const won = offers.filter((id) => id !== null);
      expect(won).toHaveLength(1);
      expect(await store.enqueueTick("other", tick, job({ type: "report" }), T0)).not.toBeNull();
      const states = await store.scheduleStates();
      expect(states.find((s) => s.name === "nightly")).toEqual({ name: "nightly", lastTick: tick + 120_000, lastJobId: won[0]! });
      expect(states.map((s) => s.name)).toContain("other");
    });

    describe("claims weighing rate and per-key limits", () => {
      const HOUR = 3_600_000;
      // Periods of an hour: the PostgreSQL store weighs rates on the database's clock, the embedded
      // one on the claim's; with these limits both decide the same within a test.
      const limits: FlowLimits = new Map<string, FlowLimit>([
        ["fr.rate", { rate: { limit: 2, perMs: HOUR, burst: 3 } }],
        ["fr.keys", { keyConcurrency: 2 }],
        ["fr.keyrate", { keyRate: { limit: 1, perMs: HOUR, burst: 1 } }],
      ]);
      const ids = (r: { jobs: { id: number }[] }) => r.jobs.map((j) => j.id).sort((a, b) => a - b);

      test("a rate lets its burst start, holds the rest with the wait for the next start, and leaves other types alone", async () => {
        const rated = await store.insert(Array.from({ length: 5 }, () => job({ type: "fr.rate" })), T0);
        const [free] = await store.insert([job({ type: "fr.free" })], T0);
        const r = await store.claim([...rated, free!], "n", T0, LEASE, limits);
        expect(ids(r)).toEqual([...rated.slice(0, 3), free!]);
        expect(r.held.map((h) => [h.id, h.reason])).toEqual([[rated[3]!, "rate_limit"], [rated[4]!, "rate_limit"]]);
        for (const h of r.held) {
          expect(h.retryInMs!).toBeGreaterThan(HOUR / 2 - 60_000);
          expect(h.retryInMs!).toBeLessThanOrEqual(HOUR / 2);
        }
        // Still pending, and still held on the next claim: the bucket is shared state, not this call's.
        expect((await store.get(rated[3]!, T0))!.state).toBe("pending");
        const again = await store.claim(rated.slice(3), "other-node", T0 + 1, LEASE, limits);
        expect(again.jobs).toEqual([]);
        expect(again.held.map((h) => h.reason)).toEqual(["rate_limit", "rate_limit"]);
        // Without limits the same claim is a plain claim.
        expect(ids(await store.claim(rated.slice(3), "n", T0 + 2, LEASE))).toEqual(rated.slice(3));
      });

      test("rates alone (the PostgreSQL store weighs them in one statement) decide the same, also between concurrent claims", async () => {
        const rates: FlowLimits = new Map<string, FlowLimit>([
          ["fr.only", { rate: { limit: 2, perMs: HOUR, burst: 3 } }],
          ["fr.only2", { rate: { limit: 1, perMs: HOUR, burst: 1 } }],
        ]);
        const rated = await store.insert(Array.from({ length: 5 }, () => job({ type: "fr.only" })), T0);
        const [other, free] = await store.insert([job({ type: "fr.only2" }), job({ type: "fr.free" })], T0);
        const r = await store.claim([free!, ...rated, other!], "n", T0, LEASE, rates);
        expect(ids(r)).toEqual([...rated.slice(0, 3), other!, free!].sort((a, b) => a - b));
        expect(r.held.map((h) => [h.id, h.reason, h.key]).sort()).toEqual([[rated[3]!, "rate_limit", null], [rated[4]!, "rate_limit", null]].sort());
        for (const h of r.held) {
          expect(h.retryInMs!).toBeGreaterThan(HOUR / 2 - 60_000);
          expect(h.retryInMs!).toBeLessThanOrEqual(HOUR / 2);
        }
        // Nothing of a held claim moved, and nothing comes back empty-handed: a claim of only held ids answers them.
        const again = await store.claim(rated.slice(3), "n", T0 + 1, LEASE, rates);
        expect(again.jobs).toEqual([]);
        expect(again.held.map((h) => h.id).sort()).toEqual(rated.slice(3).sort());
        const burst: FlowLimits = new Map<string, FlowLimit>([["fr.onlyrace", { rate: { limit: 1, perMs: HOUR, burst: 4 } }]]);
        const many = await store.insert(Array.from({ length: 20 }, () => job({ type: "fr.onlyrace" })), T0);
        const results = await Promise.all(Array.from({ length: 5 }, (_, k) => store.claim(many.slice(k * 4, k * 4 + 4), `n${k}`, T0, LEASE, burst)));
        expect(results.flatMap((x) => x.jobs)).toHaveLength(4);
        expect(results.flatMap((x) => x.held)).toHaveLength(16);
      });

      test("key concurrency counts a key's running jobs, keyless jobs and other keys pass, and a finished job frees a place", async () => {
        const a = await store.insert([job({ type: "fr.keys", key: "A" }), job({ type: "fr.keys", key: "A" }), job({ type: "fr.keys", key: "A" })], T0);
        const [b, none] = await store.insert([job({ type: "fr.keys", key: "B" }), job({ type: "fr.keys" })], T0);
        const r = await store.claim([...a, b!, none!], "n", T0, LEASE, limits);
        expect(ids(r)).toEqual([a[0]!, a[1]!, b!, none!]);
        expect(r.held).toEqual([{ id: a[2]!, type: "fr.keys", key: "A", reason: "key_concurrency", retryInMs: null, perKey: true }]);
        expect((await store.claim([a[2]!], "n", T0 + 1, LEASE, limits)).held.map((h) => h.reason)).toEqual(["key_concurrency"]);
        expect(await store.complete([{ id: a[0]!, attempt: 1 }])).toEqual([true]);
        expect(ids(await store.claim([a[2]!], "n", T0 + 2, LEASE, limits))).toEqual([a[2]!]);
      });

      test("a key's rate holds only that key", async () => {
        const [k1, k2, other] = await store.insert(
          [job({ type: "fr.keyrate", key: "K" }), job({ type: "fr.keyrate", key: "K" }), job({ type: "fr.keyrate", key: "L" })], T0);
        const r = await store.claim([k1!, k2!, other!], "n", T0, LEASE, limits);
        expect(ids(r)).toEqual([k1!, other!]);
        expect(r.held.map((h) => [h.id, h.key, h.reason])).toEqual([[k2!, "K", "rate_limit"]]);
      });

      test("pruneBuckets drops per-key buckets that are full again and keeps those still counting", async () => {
        const keyed: FlowLimits = new Map<string, FlowLimit>([
          ["pb.short", { keyRate: { limit: 1, perMs: 1, burst: 1 } }],
          ["pb.long", { keyRate: { limit: 1, perMs: HOUR, burst: 1 } }],
        ]);
        const [short] = await store.insert([job({ type: "pb.short", key: "s" })], T0);
        const long = await store.insert([job({ type: "pb.long", key: "l" }), job({ type: "pb.long", key: "l" })], T0);
        const r = await store.claim([short!, ...long], "n", T0, LEASE, keyed);
        expect(ids(r)).toEqual([short!, long[0]!]);
        // The short bucket is full again a millisecond later: some prune takes it (PostgreSQL weighs by its own clock).
        await waitFor(async () => (await store.pruneBuckets(T0 + 10, 1000)) > 0, { what: "a full bucket pruned" });
        // The long one still counts: its key's next start is an hour away.
        expect((await store.claim([long[1]!], "n", T0 + 1, LEASE, keyed)).held.map((h) => h.reason)).toEqual(["rate_limit"]);
      });

      test("weighing spends nothing on a paused type's jobs or on expired ones, which leave as expired", async () => {
        const rates: FlowLimits = new Map<string, FlowLimit>([["wp.rate", { rate: { limit: 1, perMs: HOUR, burst: 1 } }]]);
        const mixed: FlowLimits = new Map<string, FlowLimit>([["wp.keyed", { keyRate: { limit: 1, perMs: HOUR, burst: 1 } }]]);
        for (const [type, limits, key] of [["wp.rate", rates, undefined], ["wp.keyed", mixed, "k"]] as const) {
          const [expired, fresh] = await store.insert([job({ type, key, startBy: T0 + 5 }), job({ type, key })], T0);
          const r = await store.claim([expired!, fresh!], "n", T0 + 10, LEASE, limits);
          // The expired job went to dead without using the one start: the fresh one got it.
          expect(r.expired).toEqual([expired!]);
          expect(ids(r)).toEqual([fresh!]);
          expect(await store.get(expired!, T0 + 10)).toMatchObject({ state: "dead", lastError: "expired" });
        }
        await store.pauseType("wp.paused", T0);
        const pausedLimits: FlowLimits = new Map<string, FlowLimit>([["wp.paused", { rate: { limit: 1, perMs: HOUR, burst: 1 } }]]);
        const [held] = await store.insert([job({ type: "wp.paused" })], T0);
        const p = await store.claim([held!], "n", T0, LEASE, pausedLimits);
        expect(p.held.map((h) => h.reason)).toEqual(["paused"]);
        await store.resumeType("wp.paused");
        // Its one start is still there once resumed.
        expect(ids(await store.claim([held!], "n", T0 + 1, LEASE, pausedLimits))).toEqual([held!]);
      });

      test("concurrent claims never start more than a rate's burst or a key's concurrency between them", async () => {
        const tight: FlowLimits = new Map<string, FlowLimit>([
          ["fr.race", { rate: { limit: 1, perMs: HOUR, burst: 5 } }],
          ["fr.racekey", { keyConcurrency: 3 }],
        ]);
        const rated = await store.insert(Array.from({ length: 20 }, () => job({ type: "fr.race" })), T0);
        const keyed = await store.insert(Array.from({ length: 10 }, () => job({ type: "fr.racekey", key: "hot" })), T0);
        const claims = Array.from({ length: 5 }, (_, k) =>
          store.claim([...rated.slice(k * 4, k * 4 + 4), ...keyed.slice(k * 2, k * 2 + 2)], `n${k}`, T0, LEASE, tight));
        const results = await Promise.all(claims);
        const started = results.flatMap((r) => r.jobs);
        expect(started.filter((j) => j.type === "fr.race")).toHaveLength(5);
        expect(started.filter((j) => j.type === "fr.racekey")).toHaveLength(3);
        expect(results.flatMap((r) => r.held)).toHaveLength(30 - 8);
      });
    });

    test("release hands this node's aborted attempts back at once, the attempt not counted, due at their old run time", async () => {
      const [id] = await store.insert([job()], T0);
      (await store.claim([id!], "me", T0, LEASE)).jobs;
      expect(await store.release([{ id: id!, attempt: 1 }], "other", T0 + 10)).toEqual([]);
      const back = await store.release([{ id: id!, attempt: 1 }], "me", T0 + 10);
      expect(back).toEqual([{ id: id!, type: "t", priority: 0, runAt: T0, key: null }]);
      expect(await store.get(id!, T0 + 10)).toMatchObject({ state: "pending", attempts: 0 });
      (await store.claim([id!], "me", T0 + 10, LEASE)).jobs;
      await store.complete([{ id: id!, attempt: 1 }]);
    });

    test("releaseStrays hands back the owner's rows it does not keep, the attempt not counted, due as before", async () => {
      const lease = { owner: "stray-me", until: T0 + LEASE };
      const [claimed, running, born, theirs] = await store.insert([job({ priority: 3 }), job(), job({ type: "b" }), job()], T0);
      const [bornLeased] = await store.insert([job({ type: "b", lease })], T0 + 5);
      (await store.claim([claimed!, running!], "stray-me", T0 + 1, LEASE)).jobs;
      (await store.claim([theirs!], "someone", T0 + 1, LEASE)).jobs;
      const back = await store.releaseStrays("stray-me", [running!], T0 + 20);
      expect(back.sort((a, b) => a.id - b.id)).toEqual([
        { id: claimed!, type: "t", priority: 3, runAt: T0, key: null },
        { id: bornLeased!, type: "b", priority: 0, runAt: T0, key: null },
      ]);
      expect(await store.get(claimed!, T0 + 20)).toMatchObject({ state: "pending", attempts: 0 });
      expect(await store.get(bornLeased!, T0 + 20)).toMatchObject({ state: "pending", attempts: 0 });
      expect(await store.get(running!, T0 + 20)).toMatchObject({ state: "inflight", attempts: 1, owner: "stray-me" });
      expect(await store.get(theirs!, T0 + 20)).toMatchObject({ state: "inflight", owner: "someone" });
      expect((await store.get(born!, T0 + 20))!.state).toBe("pending");
      expect(await store.releaseStrays("stray-me", [running!], T0 + 20)).toEqual([]);
      const again = (await store.claim([claimed!, bornLeased!, born!], "stray-me", T0 + 20, LEASE)).jobs;
      expect(again.map((j) => j.attempts)).toEqual([1, 1, 1]);
      await store.complete([...again.map((j) => ({ id: j.id, attempt: 1 })), { id: running!, attempt: 1 }, { id: theirs!, attempt: 1 }]);
    });

    test("recoverOwner returns only that owner's inflight rows, attempts kept", async () => {
      const [mine, theirs] = await store.insert([job(), job()], T0);
      (await store.claim([mine!], "old-me", T0, LEASE)).jobs;
      (await store.claim([theirs!], "someone", T0, LEASE)).jobs;
      const back = await store.recoverOwner("old-me", T0);
      expect(back.map((e) => e.id)).toEqual([mine!]);
      expect(await store.get(mine!, T0)).toMatchObject({ state: "pending", attempts: 1 });
      expect((await store.get(theirs!, T0))!.state).toBe("inflight");
      (await store.claim([mine!], "n", T0, LEASE)).jobs;
      await store.complete([{ id: mine!, attempt: 2 }, { id: theirs!, attempt: 1 }]);
    });

    test("streamPending yields every pending row once, in batches, with its type and without payloads", async () => {
      const before = (await store.counts()).pending;
      await store.insert(Array.from({ length: 250 }, (_, i) => job({ priority: i % 101 })), T0);
      const seen = new Set<number>();
      let batches = 0;
      for await (const batch of store.streamPending(100)) {
        batches++;
        expect(batch.length).toBeLessThanOrEqual(100);
        for (const e of batch) {
          expect(Object.keys(e).sort()).toEqual(["id", "key", "priority", "runAt", "type"]);
          seen.add(e.id);
        }
      }
      expect(seen.size).toBe(before + 250);
      expect(batches).toBeGreaterThanOrEqual(3);
    });

    test("claimNext claims the most urgent of the oldest due rows, never one claimed elsewhere or not due", async () => {
      const late = T0 + 10_000_000;
      // Clear what earlier tests left pending so the window holds only this test's rows.
      for (;;) {
        const left = await store.claimNext(1000, "sweeper", late - 1, LEASE, 0);
        if (left.length === 0) break;
        await store.complete(left.map((j) => ({ id: j.id, attempt: j.attempts })));
      }
      const [old, urgent, future, taken] = await store.insert([
        job({ runAt: late }), job({ runAt: late + 3000, priority: 5 }), job({ runAt: late + 60_000 }), job({ runAt: late }),
      ], T0);
      (await store.claim([taken!], "n", late, LEASE)).jobs;
      // agingMs 1000: urgent's key is late + 3000 − 5000 < old's key late: urgent first.
      const first = await store.claimNext(1, "me", late + 5000, LEASE, 1000);
      expect(first.map((j) => j.id)).toEqual([urgent!]);
      expect(first[0]!.attempts).toBe(1);
      expect(await store.get(urgent!, late + 5000)).toMatchObject({ state: "inflight", owner: "me" });
      const rest = await store.claimNext(10, "me", late + 5000, LEASE, 1000);
      expect(rest.map((j) => j.id)).toEqual([old!]);
      expect(await store.claimNext(10, "me", late + 5000, LEASE, 1000)).toEqual([]);
      const racing = await Promise.all([store.claimNext(5, "a", late + 60_000, LEASE, 0), store.claimNext(5, "b", late + 60_000, LEASE, 0)]);
      expect(racing.flat().map((j) => j.id)).toEqual([future!]);
      await store.complete([urgent!, old!, future!, taken!].map((id) => ({ id, attempt: 1 })));
    });

    test("peekUrgent and claimNext find exactly the most urgent due rows by aging key, against a sorted oracle", async () => {
      const late = T0 + 15_000_000;
      for (;;) {
        const left = await store.claimNext(1000, "sweeper", late + 100_000, LEASE, 0);
        if (left.length === 0) break;
        await store.complete(left.map((j) => ({ id: j.id, attempt: j.attempts })));
      }
      // Many priorities and run times, ties on both, some not yet due.
      let seed = 7;
      const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
      const jobs = Array.from({ length: 400 }, () => job({ type: "urg", priority: rand(4) * 33, runAt: late + rand(40) * 250 }));
      const ids = await store.insert(jobs, T0);
      const now = late + 8000;
      for (const agingMs of [0, 1, 100, 1000]) {
        const oracle = ids
          .map((id, i) => ({ id, key: jobs[i]!.runAt - jobs[i]!.priority * agingMs, due: jobs[i]!.runAt <= now }))
          .filter((e) => e.due)
          .sort((a, b) => a.key - b.key || a.id - b.id);
        for (const limit of [1, 7, 50]) {
          const peeked = await store.peekUrgent(now, agingMs, limit);
          expect({ agingMs, limit, ids: peeked.map((e) => e.id) }).toEqual({ agingMs, limit, ids: oracle.slice(0, limit).map((e) => e.id) });
        }
      }
      // A claim takes the same rows, and the next peek starts after them.
      const agingMs = 100;
      const order = (await store.peekUrgent(now, agingMs, 1000)).map((e) => e.id);
      const claimed = await store.claimNext(20, "me", now, LEASE, agingMs);
      expect(claimed.map((j) => j.id).sort((a, b) => a - b)).toEqual(order.slice(0, 20).sort((a, b) => a - b));
      expect((await store.peekUrgent(now, agingMs, 5)).map((e) => e.id)).toEqual(order.slice(20, 25));
      await store.complete(claimed.map((j) => ({ id: j.id, attempt: 1 })));
      await store.cancelPending(ids);
    });

    test("claimNext with caps takes at most each capped type's room, none of a full type, and any number of the rest", async () => {
      const late = T0 + 20_000_000;
      for (;;) {
        const left = await store.claimNext(1000, "sweeper", late - 1, LEASE, 0);
        if (left.length === 0) break;
        await store.complete(left.map((j) => ({ id: j.id, attempt: j.attempts })));
      }
      const capped = await store.insert([1, 2, 3].map((i) => job({ type: "capped", runAt: late + i })), T0);
      const full = await store.insert([job({ type: "full", runAt: late })], T0);
      const free = await store.insert([1, 2, 3].map((i) => job({ type: "free", runAt: late + 10 + i })), T0);
      const got = await store.claimNext(10, "me", late + 100, LEASE, 0, [{ type: "capped", room: 2 }, { type: "full", room: 0 }]);
      expect(got.map((j) => j.id).sort((a, b) => a - b)).toEqual([...capped.slice(0, 2), ...free]);
      const rest = await store.claimNext(10, "me", late + 100, LEASE, 0);
      expect(rest.map((j) => j.id).sort((a, b) => a - b)).toEqual([capped[2]!, full[0]!]);
      await store.complete([...got, ...rest].map((j) => ({ id: j.id, attempt: 1 })));
    });

    test("claimNext with a capped type older than the rest still fills its limit with other types' due jobs", async () => {
      const late = T0 + 25_000_000;
      for (;;) {
        const left = await store.claimNext(1000, "sweeper", late - 1, LEASE, 0);
        if (left.length === 0) break;
        await store.complete(left.map((j) => ({ id: j.id, attempt: j.attempts })));
      }
      const capped = await store.insert(Array.from({ length: 20 }, (_, i) => job({ type: "crowd", runAt: late + i })), T0);
      const [other] = await store.insert([job({ type: "other", runAt: late + 100 })], T0);
      const got = await store.claimNext(2, "me", late + 1000, LEASE, 0, [{ type: "crowd", room: 1 }]);
      expect(got.map((j) => j.id)).toEqual([capped[0]!, other!]);
      await store.complete(got.map((j) => ({ id: j.id, attempt: 1 })));
      await store.cancelPending(capped);
    });

    test("node heartbeats count the nodes alive since a moment, and a clean stop removes one", async () => {
      expect(await store.heartbeatNode("node-a", T0, T0 - 1000)).toBe(1);
      expect(await store.heartbeatNode("node-b", T0 + 100, T0 - 1000)).toBe(2);
      // node-a beats again later; node-b has gone quiet since T0 + 100.
      expect(await store.heartbeatNode("node-a", T0 + 5000, T0 + 1000)).toBe(1);
      expect(await store.heartbeatNode("node-b", T0 + 5000, T0 + 1000)).toBe(2);
      await store.removeNode("node-b");
      expect(await store.heartbeatNode("node-a", T0 + 6000, T0 + 1000)).toBe(1);
      await store.removeNode("node-a");
    });

    test("counts reflect the three tables", async () => {
      const c0 = await store.counts();
      const [a, b] = await store.insert([job(), job()], T0);
      (await store.claim([a!, b!], "n", T0, LEASE)).jobs;
      await store.bury([{ id: b!, attempt: 1, error: "x" }], T0);
      const c1 = await store.counts();
      expect(c1).toEqual({ pending: c0.pending, inflight: c0.inflight + 1, dead: c0.dead + 1 });
      await store.complete([{ id: a!, attempt: 1 }]);
    });

    test("empty batches are no-ops", async () => {
      expect(await store.insert([], T0)).toEqual([]);
      expect((await store.claim([], "n", T0, LEASE)).jobs).toEqual([]);
      expect(await store.complete([])).toEqual([]);
      expect(await store.retry([])).toEqual([]);
      expect(await store.throttle([])).toEqual([]);
      expect(await store.bury([], T0)).toEqual([]);
      expect(await store.extendLeases([], "n", T0)).toEqual([]);
      expect(await store.release([], "n", T0)).toEqual([]);
    });

    test("unicode and large payloads round-trip verbatim", async () => {
      const payload = JSON.stringify({ s: "héllo ✓ \u0000-free 🚀", big: "x".repeat(200_000) });
      const [id] = await store.insert([job({ payload })], T0);
      const [c] = (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect(c!.payload).toBe(payload);
      await store.complete([{ id: id!, attempt: 1 }]);
    });

    test("a second insert with a held idempotency key inserts nothing and names the holder", async () => {
      const [first] = await store.add([job({ idempotencyKey: "k-basic" })], T0);
      expect(first).toEqual({ id: expect.any(Number), duplicate: false });
      const before = await store.counts();
      const again = await store.add([job({ idempotencyKey: "k-basic", type: "other" })], T0 + 1);
      expect(again).toEqual([{ id: first!.id, duplicate: true }]);
      expect(await store.counts()).toEqual(before);
      expect((await store.get(first!.id, T0))!.type).toBe("t");
      // insert() honours keys too, answering with the holder's id.
      expect(await store.insert([job({ idempotencyKey: "k-basic" })], T0)).toEqual([first!.id]);
      await store.cancelPending([first!.id]);
    });

    test("within one call a repeated key maps to its first job, and jobs without keys always insert in order", async () => {
      const res = await store.add([
        job(), job({ idempotencyKey: "k-same" }), job(), job({ idempotencyKey: "k-same" }), job({ idempotencyKey: "k-other" }),
      ], T0);
      expect(res.map((r) => r.duplicate)).toEqual([false, false, false, true, false]);
      expect(res[3]!.id).toBe(res[1]!.id);
      const fresh = res.filter((r) => !r.duplicate).map((r) => r.id);
      expect(fresh).toEqual([...fresh].sort((a, b) => a - b));
      expect(new Set(fresh).size).toBe(4);
      expect(await store.cancelPending(fresh)).toEqual([true, true, true, true]);
    });

    test("a key is held while its job is pending, running, retried or dead, and released when it leaves for good", async () => {
      const holds = async (key: string, id: number) => (await store.add([job({ idempotencyKey: key })], T0))[0]!.id === id;
      // Completed: released.
      const [a] = await store.add([job({ idempotencyKey: "k-life" })], T0);
      (await store.claim([a!.id], "n", T0, LEASE)).jobs;
      expect(await holds("k-life", a!.id)).toBe(true);
      await store.retry([{ id: a!.id, attempt: 1, runAt: T0, error: "e" }]);
      expect(await holds("k-life", a!.id)).toBe(true);
      (await store.claim([a!.id], "n", T0, LEASE)).jobs;
      await store.bury([{ id: a!.id, attempt: 2, error: "e" }], T0);
      expect(await holds("k-life", a!.id)).toBe(true);
      await store.retryDead([a!.id], T0);
      (await store.claim([a!.id], "n", T0, LEASE)).jobs;
      expect(await store.complete([{ id: a!.id, attempt: 1 }])).toEqual([true]);
      const [b] = await store.add([job({ idempotencyKey: "k-life" })], T0);
      expect(b!.duplicate).toBe(false);
      expect(b!.id).not.toBe(a!.id);
      // Cancelled while pending, cancelled while running, and deleted while dead: released each time.
      await store.cancelPending([b!.id]);
      const [c] = await store.add([job({ idempotencyKey: "k-life" })], T0);
      expect(c!.duplicate).toBe(false);
      (await store.claim([c!.id], "n", T0, LEASE)).jobs;
      await store.completeCancelled([{ id: c!.id, attempt: 1 }]);
      const [d] = await store.add([job({ idempotencyKey: "k-life" })], T0);
      expect(d!.duplicate).toBe(false);
      (await store.claim([d!.id], "n", T0, LEASE)).jobs;
      await store.bury([{ id: d!.id, attempt: 1, error: "x" }], T0);
      await store.deleteDead([d!.id]);
      const [e] = await store.add([job({ idempotencyKey: "k-life", type: "k.bulk" })], T0);
      expect(e!.duplicate).toBe(false);
      (await store.claim([e!.id], "n", T0, LEASE)).jobs;
      await store.bury([{ id: e!.id, attempt: 1, error: "x" }], T0);
      await store.deleteDeadOfType("k.bulk", 10);
      expect((await store.add([job({ idempotencyKey: "k-life" })], T0))[0]!.duplicate).toBe(false);
    });

    test("concurrent inserts of one key agree on exactly one job", async () => {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        store.add([job({ idempotencyKey: "k-race", payload: String(i) }), job({ idempotencyKey: `k-race-${i % 3}` })], T0)));
      const firsts = results.map((r) => r[0]!);
      expect(firsts.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(firsts.map((r) => r.id)).size).toBe(1);
      for (let k = 0; k < 3; k++) {
        const mine = results.filter((_, i) => i % 3 === k).map((r) => r[1]!);
        expect(mine.filter((r) => !r.duplicate)).toHaveLength(1);
        expect(new Set(mine.map((r) => r.id)).size).toBe(1);
      }
      const ids = [...new Set(results.flat().map((r) => r.id))];
      expect(ids).toHaveLength(4);
      expect(await store.cancelPending(ids)).toEqual([true, true, true, true]);
    });

    test("stats count each type's jobs by state and find the oldest due run time", async () => {
      const base = await store.stats(T0);
      const others = (x: typeof base) => x.types.filter((t) => !t.type.startsWith("st."));
      const [a1, a2, a3] = await store.insert([job({ type: "st.a", runAt: T0 - 500 }), job({ type: "st.a", runAt: T0 + 9000 }), job({ type: "st.a" })], T0 - 1000);
      const [b1, b2] = await store.insert([job({ type: "st.b" }), job({ type: "st.b" })], T0 - 1000);
      (await store.claim([a3!, b1!, b2!], "n", T0, LEASE)).jobs;
      await store.bury([{ id: b2!, attempt: 1, error: "x" }], T0);
      const st = await store.stats(T0);
      expect(st.types.filter((t) => t.type.startsWith("st."))).toEqual([
        { type: "st.a", pending: 1, scheduled: 1, inflight: 1, dead: 0, completed: 0 },
        { type: "st.b", pending: 0, scheduled: 0, inflight: 1, dead: 1, completed: 0 },
      ]);
      expect(others(st)).toEqual(others(base));
      expect(st.oldestDueAt).not.toBeNull();
      expect(st.oldestDueAt!).toBeLessThanOrEqual(T0 - 500);
      await store.cancelPending([a1!, a2!]);
      await store.complete([{ id: a3!, attempt: 1 }, { id: b1!, attempt: 1 }]);
      await store.deleteDead([b2!]);
      expect((await store.stats(T0)).types.filter((t) => t.type.startsWith("st."))).toEqual([]);
    });

    test("complete with keep leaves a completed record with its result and key until it is pruned", async () => {
      const [a, b] = await store.insert([job({ type: "kc", priority: 3, idempotencyKey: "k-kept" }), job({ type: "kc" })], T0);
      (await store.claim([a!, b!], "n", T0, LEASE)).jobs;
      expect(await store.complete([{ id: a!, attempt: 2, result: "no" }], { finishedAt: T0 + 10, expiresAt: T0 + 40 })).toEqual([false]);
      expect(await store.complete([{ id: a!, attempt: 1, result: "made 3 thumbnails" }, { id: b!, attempt: 1 }], { finishedAt: T0 + 10, expiresAt: T0 + 40 })).toEqual([true, true]);
      expect(await store.get(a!, T0 + 20)).toMatchObject({
        id: a!, type: "kc", state: "completed", priority: 3, attempts: 1, maxAttempts: 3, runAt: T0, createdAt: T0,
        finishedAt: T0 + 10, result: "made 3 thumbnails", payload: "null", lastError: null,
      });
      expect(await store.get(b!, T0 + 20)).toMatchObject({ state: "completed", result: null });
      expect((await store.stats(T0)).types.find((t) => t.type === "kc")).toEqual({ type: "kc", pending: 0, scheduled: 0, inflight: 0, dead: 0, completed: 2 });
      // The key is held by the record.
      expect(await store.add([job({ idempotencyKey: "k-kept" })], T0)).toEqual([{ id: a!, duplicate: true }]);
      expect(await store.complete([{ id: a!, attempt: 1 }], { finishedAt: T0, expiresAt: T0 + 40 })).toEqual([false]);
      // Pruning takes records expired by `now`, at most `limit`, and frees their keys; how long the
      // server keeps new records today (the last argument) does not shorten or stretch them.
      expect(await store.pruneCompleted(T0 + 39, 100, 0)).toBe(0);
      expect(await store.pruneCompleted(T0 + 40, 1, 365 * 86_400_000)).toBe(1);
      expect(await store.pruneCompleted(T0 + 40, 100, 365 * 86_400_000)).toBe(1);
      expect(await store.get(a!, T0 + 20)).toBeNull();
      expect(await store.get(b!, T0 + 20)).toBeNull();
      const [again] = await store.add([job({ idempotencyKey: "k-kept" })], T0);
      expect(again!.duplicate).toBe(false);
      await store.cancelPending([again!.id]);
    });

    test("cancelPending deletes pending and scheduled jobs only, and says which", async () => {
      const [due, later, running] = await store.insert([job(), job({ runAt: T0 + 60_000 }), job()], T0);
      (await store.claim([running!], "n", T0, LEASE)).jobs;
      expect(await store.cancelPending([due!, later!, running!, 999_999_997])).toEqual([true, true, false, false]);
      expect(await store.get(due!, T0)).toBeNull();
      expect(await store.get(later!, T0)).toBeNull();
      expect((await store.claim([due!], "n", T0, LEASE)).jobs).toEqual([]);
      expect(await store.cancelPending([])).toEqual([]);
      await store.complete([{ id: running!, attempt: 1 }]);
    });

    test("completeCancelled removes a running attempt only for the claim it names", async () => {
      const [id] = await store.insert([job()], T0);
      (await store.claim([id!], "n", T0, LEASE)).jobs;
      expect(await store.completeCancelled([{ id: id!, attempt: 2 }])).toEqual([false]);
      expect(await store.completeCancelled([{ id: id!, attempt: 1 }])).toEqual([true]);
      expect(await store.get(id!, T0)).toBeNull();
      expect(await store.completeCancelled([{ id: id!, attempt: 1 }])).toEqual([false]);
      expect(await store.completeCancelled([])).toEqual([]);
    });

    /** Jobs of a type of their own, claimed and buried, so dead-letter tests see only their rows. */
    async function buried(type: string, n: number, failedAt = T0): Promise<number[]> {
      const ids = await store.insert(Array.from({ length: n }, (_, i) => job({ type, priority: i % 3 })), T0);
      (await store.claim(ids, "n", T0, LEASE)).jobs;
      await store.bury(ids.map((id) => ({ id, attempt: 1, error: `e${id}` })), failedAt);
      return ids;
    }

    test("listDead pages through dead jobs in id order, optionally of one type", async () => {
      const a = await buried("dl.a", 3);
      const b = await buried("dl.b", 2);
      const page1 = await store.listDead({ type: "dl.a", afterId: 0, limit: 2 });
      expect(page1.map((j) => j.id)).toEqual(a.slice(0, 2));
      expect(page1[0]).toMatchObject({ state: "dead", type: "dl.a", attempts: 1, lastError: `e${a[0]}`, failedAt: T0, payload: '{"n":1}' });
      const page2 = await store.listDead({ type: "dl.a", afterId: page1[1]!.id, limit: 2 });
      expect(page2.map((j) => j.id)).toEqual([a[2]!]);
      const all = (await store.listDead({ afterId: a[0]! - 1, limit: 100 })).map((j) => j.id);
      expect(all).toEqual([...a, ...b]);
      expect(await store.listDead({ type: "dl.none", afterId: 0, limit: 10 })).toEqual([]);
      await store.deleteDeadOfType("dl.a", 100);
      await store.deleteDeadOfType("dl.b", 100);
    });

    test("listDead with a byte budget stops after the row whose payload takes the total past it", async () => {
      // Each payload is 100 bytes of UTF-8 but 51 characters: the budget counts bytes.
      const payload = JSON.stringify("é".repeat(49));
      expect(Buffer.byteLength(payload)).toBe(100);
      const ids = await store.insert(Array.from({ length: 5 }, () => job({ type: "dl.bytes", payload })), T0);
      (await store.claim(ids, "n", T0, LEASE)).jobs;
      await store.bury(ids.map((id) => ({ id, attempt: 1, error: "e" })), T0);
      const page = async (maxBytes: number | undefined, limit = 10, afterId = 0) =>
        (await store.listDead({ type: "dl.bytes", afterId, limit, ...(maxBytes !== undefined && { maxBytes }) })).map((j) => j.id);
      // Rows start at 0, 100, 200, 300 and 400 bytes into the page.
      expect(await page(250)).toEqual(ids.slice(0, 3));
      expect(await page(200)).toEqual(ids.slice(0, 3));
      expect(await page(199)).toEqual(ids.slice(0, 2));
      expect(await page(0)).toEqual(ids.slice(0, 1)); // always at least one row
      expect(await page(10_000)).toEqual(ids);
      expect(await page(undefined)).toEqual(ids);
      expect(await page(250, 2)).toEqual(ids.slice(0, 2)); // the row limit still holds
      expect(await page(150, 10, ids[2]!)).toEqual(ids.slice(3, 5)); // the budget counts from the cursor
      expect((await store.listDead({ type: "dl.bytes", afterId: 0, limit: 1, maxBytes: 1 }))[0]).toMatchObject({ payload, state: "dead" });
      await store.deleteDeadOfType("dl.bytes", 100);
    });

    test("listDead lists newest first when asked, paging down from the newest", async () => {
      const ids = await buried("dl.new", 5);
      const newest = [...ids].reverse();
      const page1 = await store.listDead({ type: "dl.new", afterId: 0, order: "newest", limit: 2 });
      expect(page1.map((j) => j.id)).toEqual(newest.slice(0, 2));
      const page2 = await store.listDead({ type: "dl.new", afterId: page1[1]!.id, order: "newest", limit: 2 });
      expect(page2.map((j) => j.id)).toEqual(newest.slice(2, 4));
      const page3 = await store.listDead({ type: "dl.new", afterId: page2[1]!.id, order: "newest", limit: 2 });
      expect(page3.map((j) => j.id)).toEqual(newest.slice(4));
      expect(await store.listDead({ type: "dl.new", afterId: ids[0]!, order: "newest", limit: 2 })).toEqual([]);
      expect((await store.listDead({ type: "dl.new", afterId: 0, order: "oldest", limit: 10 })).map((j) => j.id)).toEqual(ids);
      await store.deleteDeadOfType("dl.new", 100);
    });

    describe("listJobs", () => {
      const NOW = T0 + 1_000;
      const ids = { pending: [] as number[], scheduled: [] as number[], inflight: [] as number[], dead: [] as number[], completed: [] as number[] };
      /** Every page of a listing, one after another from the first, as `limit`-sized pages. */
      async function allPages(query: Omit<JobQuery, "afterId">, now = NOW): Promise<number[][]> {
        const pages: number[][] = [];
        let afterId = 0;
        for (;;) {
          const page = (await store.listJobs({ ...query, afterId }, now)).map((j) => j.id);
          if (page.length === 0) return pages;
          pages.push(page);
          afterId = page[page.length - 1]!;
        }
      }

      beforeAll(async () => {
        // Two types interleaved in every state, so a type filter has rows on both sides of each of its own.
        const interleaved = (n: number, over: Partial<NewJob> = {}) =>
          Array.from({ length: n }, (_, i) => job({ type: i % 3 === 1 ? "lj.b" : "lj.a", payload: `{"i":${i}}`, ...over }));
        ids.pending = await store.insert(interleaved(7), T0);
        ids.scheduled = await store.insert(interleaved(4, { runAt: NOW + 60_000 }), T0);
        ids.inflight = await store.insert(interleaved(4), T0);
        (await store.claim(ids.inflight, "node-l", T0, LEASE)).jobs;
        ids.dead = await store.insert(interleaved(5), T0);
        (await store.claim(ids.dead, "node-l", T0, LEASE)).jobs;
        await store.bury(ids.dead.map((id) => ({ id, attempt: 1, error: "gone" })), T0 + 10);
        ids.completed = await store.insert(interleaved(4), T0);
        (await store.claim(ids.completed, "node-l", T0, LEASE)).jobs;
        await store.complete(ids.completed.map((id) => ({ id, attempt: 1, result: `r${id}` })), { finishedAt: T0 + 20, expiresAt: T0 + 3_600_000 });
      });

      const typeOf = (state: keyof typeof ids, type: string) => ids[state].filter((_, i) => (i % 3 === 1 ? "lj.b" : "lj.a") === type);

      test("lists one state's jobs of a type in id order, oldest or newest first, shown as get() shows them", async () => {
        for (const state of ["pending", "scheduled", "inflight", "dead", "completed"] as const) {
          for (const type of ["lj.a", "lj.b"]) {
            const want = typeOf(state, type);
            const oldest = await store.listJobs({ state, type, order: "oldest", limit: 100 }, NOW);
            expect({ state, type, ids: oldest.map((j) => j.id) }).toEqual({ state, type, ids: want });
            const newest = await store.listJobs({ state, type, order: "newest", limit: 100 }, NOW);
            expect({ state, type, ids: newest.map((j) => j.id) }).toEqual({ state, type, ids: [...want].reverse() });
            for (const listed of oldest) expect(listed).toEqual({ ...(await store.get(listed.id, NOW))! });
          }
        }
        const [dead] = await store.listJobs({ state: "dead", type: "lj.a", order: "oldest", limit: 1 }, NOW);
        expect(dead).toMatchObject({ state: "dead", lastError: "gone", failedAt: T0 + 10, attempts: 1, payload: '{"i":0}' });
        const [running] = await store.listJobs({ state: "inflight", type: "lj.a", order: "oldest", limit: 1 }, NOW);
        expect(running).toMatchObject({ state: "inflight", owner: "node-l", leaseUntil: T0 + LEASE });
        const [record] = await store.listJobs({ state: "completed", type: "lj.a", order: "newest", limit: 1 }, NOW);
        expect(record).toMatchObject({ state: "completed", payload: "null", finishedAt: T0 + 20, result: `r${record!.id}` });
      });

      test("pages through a state with no duplicates and no gaps, in either order", async () => {
        for (const order of ["oldest", "newest"] as const) {
          for (const limit of [1, 2, 3]) {
            const pages = await allPages({ state: "pending", type: "lj.a", order, limit });
            expect(pages.every((p) => p.length <= limit)).toBe(true);
            const want = typeOf("pending", "lj.a");
            expect(pages.flat()).toEqual(order === "oldest" ? want : [...want].reverse());
          }
        }
        // Without a type: every pending job of any type (and other tests' too), so only the order and this test's rows are checked.
        const all = (await allPages({ state: "pending", order: "newest", limit: 4 })).flat();
        expect(new Set(all).size).toBe(all.length);
        expect(all).toEqual([...all].sort((a, b) => b - a));
        expect(all.filter((id) => ids.pending.includes(id))).toEqual([...ids.pending].reverse());
        expect(all.some((id) => ids.scheduled.includes(id) || ids.inflight.includes(id))).toBe(false);
      });

      test("splits pending from scheduled at the time it is given", async () => {
        const pendingAt = async (now: number) => (await store.listJobs({ state: "pending", type: "lj.b", order: "oldest", limit: 100 }, now)).map((j) => j.id);
        const scheduledAt = async (now: number) => (await store.listJobs({ state: "scheduled", type: "lj.b", order: "oldest", limit: 100 }, now)).map((j) => j.id);
        expect(await pendingAt(NOW)).toEqual(typeOf("pending", "lj.b"));
        expect(await scheduledAt(NOW)).toEqual(typeOf("scheduled", "lj.b"));
        expect(await pendingAt(NOW + 60_000)).toEqual([...typeOf("pending", "lj.b"), ...typeOf("scheduled", "lj.b")]);
        expect(await scheduledAt(NOW + 60_000)).toEqual([]);
        expect(await store.listJobs({ state: "pending", type: "lj.none", order: "oldest", limit: 10 }, NOW)).toEqual([]);
      });

      test("keeps to a byte budget counted from the cursor, in either order, and always lists one", async () => {
        const payload = JSON.stringify("é".repeat(49)); // 100 bytes
        const mine = await store.insert(Array.from({ length: 5 }, () => job({ type: "lj.bytes", payload })), T0);
        const page = async (order: ListOrder, maxBytes: number, afterId = 0) =>
          (await store.listJobs({ state: "pending", type: "lj.bytes", order, afterId, limit: 10, maxBytes }, NOW)).map((j) => j.id);
        expect(await page("oldest", 199)).toEqual(mine.slice(0, 2));
        expect(await page("oldest", 200)).toEqual(mine.slice(0, 3));
        expect(await page("newest", 199)).toEqual([mine[4]!, mine[3]!]);
        expect(await page("newest", 150, mine[3]!)).toEqual([mine[2]!, mine[1]!]);
        expect(await page("newest", 0)).toEqual([mine[4]!]);
        const [one] = await store.listJobs({ state: "pending", type: "lj.bytes", order: "oldest", limit: 1, maxBytes: 1 }, NOW);
        expect(one).toMatchObject({ id: mine[0], payload });
        const [record] = await store.listJobs({ state: "completed", type: "lj.a", order: "oldest", limit: 10, maxBytes: 0 }, NOW);
        expect(record!.id).toBe(typeOf("completed", "lj.a")[0]!);
        expect(await store.cancelPending(mine)).toEqual(mine.map(() => true));
      });
    });

    test("retryDead moves dead jobs back to pending due now with attempts reset, and skips ids that are not dead", async () => {
      const [dead] = await buried("rd", 1);
      const [live] = await store.insert([job({ type: "rd" })], T0);
      const back = await store.retryDead([dead!, live!, 999_999_998], T0 + 50);
      expect(back).toEqual([{ id: dead!, type: "rd", priority: 0, runAt: T0 + 50, key: null }]);
      expect(await store.get(dead!, T0 + 50)).toMatchObject({ state: "pending", attempts: 0, runAt: T0 + 50, lastError: `e${dead}`, maxAttempts: 3 });
      expect(await store.retryDead([dead!], T0 + 60)).toEqual([]);
      const [again] = (await store.claim([dead!, live!], "n", T0 + 50, LEASE)).jobs;
      expect(again!.attempts).toBe(1);
      await store.complete([{ id: dead!, attempt: 1 }, { id: live!, attempt: 1 }]);
    });

    test("retryDeadOfType moves at most `limit` of one type, lowest ids first, and only those that failed by `now`", async () => {
      const ids = await buried("rt", 5, T0);
      const [late] = await buried("rt", 1, T0 + 1000);
      const other = await buried("rt.other", 1);
      const first = await store.retryDeadOfType("rt", T0 + 10, 3);
      expect(first.map((e) => e.id)).toEqual(ids.slice(0, 3));
      const rest = await store.retryDeadOfType("rt", T0 + 10, 3);
      expect(rest.map((e) => e.id)).toEqual(ids.slice(3));
      expect(await store.retryDeadOfType("rt", T0 + 10, 3)).toEqual([]);
      expect((await store.get(late!, T0))!.state).toBe("dead");
      expect((await store.get(other[0]!, T0))!.state).toBe("dead");
      (await store.claim(ids, "n", T0 + 10, LEASE)).jobs;
      await store.complete(ids.map((id) => ({ id, attempt: 1 })));
      await store.deleteDead([late!, other[0]!]);
    });

    test("deleteDead removes only dead jobs and says which; deleteDeadOfType removes at most `limit` of one type", async () => {
      const [dead] = await buried("dd", 1);
      const [live] = await store.insert([job({ type: "dd" })], T0);
      expect(await store.deleteDead([dead!, live!])).toEqual([true, false]);
      expect(await store.get(dead!, T0)).toBeNull();
      expect((await store.get(live!, T0))!.state).toBe("pending");
      const many = await buried("dd.bulk", 5);
      const keep = await buried("dd.keep", 1);
      expect(await store.deleteDeadOfType("dd.bulk", 2)).toBe(2);
      expect(await store.deleteDeadOfType("dd.bulk", 10)).toBe(3);
      expect(await store.deleteDeadOfType("dd.bulk", 10)).toBe(0);
      for (const id of many) expect(await store.get(id, T0)).toBeNull();
      expect((await store.get(keep[0]!, T0))!.state).toBe("dead");
      expect(await store.deleteDead([])).toEqual([]);
      expect(await store.retryDead([], T0)).toEqual([]);
      await store.deleteDead(keep);
      (await store.claim([live!], "n", T0, LEASE)).jobs;
      await store.complete([{ id: live!, attempt: 1 }]);
    });
    test("pauseType, resumeType and pausedTypes keep the paused set, each saying whether it changed", async () => {
      expect(await store.pausedTypes()).toEqual([]);
      expect(await store.pauseType("pz.b", T0)).toBe(true);
      expect(await store.pauseType("pz.a", T0)).toBe(true);
      expect(await store.pauseType("pz.a", T0 + 1)).toBe(false);
      expect(await store.pausedTypes()).toEqual(["pz.a", "pz.b"]);
      expect(await store.resumeType("pz.a")).toBe(true);
      expect(await store.resumeType("pz.a")).toBe(false);
      expect(await store.resumeType("pz.never")).toBe(false);
      expect(await store.pausedTypes()).toEqual(["pz.b"]);
      expect(await store.resumeType("pz.b")).toBe(true);
      expect(await store.pausedTypes()).toEqual([]);
    });

    test("a claim holds due jobs of a paused type where they are, starts the others, and starts them once resumed", async () => {
      await store.pauseType("ph.paused", T0);
      const [held, free, later] = await store.insert(
        [job({ type: "ph.paused", key: "k1" }), job({ type: "ph.free" }), job({ type: "ph.paused", runAt: T0 + 60_000 })], T0);
      const r = await store.claim([held!, free!, later!], "n", T0 + 1, LEASE);
      expect(r.jobs.map((j) => j.id)).toEqual([free!]);
      expect(r.held).toEqual([{ id: held!, type: "ph.paused", key: "k1", reason: "paused", retryInMs: null }]);
      expect(r.expired).toEqual([]);
      expect(await store.get(held!, T0 + 1)).toMatchObject({ state: "pending", attempts: 0 });
      expect((await store.claim([held!], "n2", T0 + 2, LEASE)).held.map((h) => h.id)).toEqual([held!]);
      await store.resumeType("ph.paused");
      const after = await store.claim([held!], "n", T0 + 3, LEASE);
      expect(after.jobs.map((j) => j.id)).toEqual([held!]);
      expect(after.held).toEqual([]);
      await store.complete([{ id: free!, attempt: 1 }, { id: held!, attempt: 1 }]);
      (await store.claim([later!], "n", T0 + 60_000, LEASE)).jobs;
      await store.complete([{ id: later!, attempt: 1 }]);
    });

    test("claimNext and peekUrgent leave out paused types and jobs past their deadline", async () => {
      const late = T0 + 20_000_000;
      for (;;) {
        const left = await store.claimNext(1000, "sweeper", late, LEASE, 0);
        if (left.length === 0) break;
        await store.complete(left.map((j) => ({ id: j.id, attempt: j.attempts })));
      }
      await store.pauseType("pn.paused", T0);
      const [paused, stale, fresh] = await store.insert([
        job({ type: "pn.paused", runAt: late, priority: 9 }),
        job({ type: "pn.free", runAt: late, priority: 9, startBy: late + 10 }),
        job({ type: "pn.free", runAt: late }),
      ], T0);
      const peek = (await store.peekUrgent(late + 100, 0, 10)).map((e) => e.id);
      expect(peek).toContain(fresh!);
      expect(peek).not.toContain(paused!);
      expect(peek).not.toContain(stale!);
      const got = await store.claimNext(10, "me", late + 100, LEASE, 0, [{ type: "pn.free", room: 5 }]);
      expect(got.map((j) => j.id)).toEqual([fresh!]);
      expect(await store.claimNext(10, "me", late + 100, LEASE, 0)).toEqual([]);
      expect((await store.get(paused!, late + 100))!.state).toBe("pending");
      expect((await store.get(stale!, late + 100))!.state).toBe("pending");
      await store.resumeType("pn.paused");
      expect((await store.claimNext(10, "me", late + 100, LEASE, 0)).map((j) => j.id)).toEqual([paused!]);
      await store.complete([{ id: fresh!, attempt: 1 }, { id: paused!, attempt: 1 }]);
      expect((await store.claim([stale!], "me", late + 100, LEASE)).expired).toEqual([stale!]);
    });

    test("a claim moves due jobs past their deadline to dead as expired instead of starting them, paused or not", async () => {
      await store.pauseType("pe.paused", T0);
      const [gone, edge, ok, pausedGone] = await store.insert([
        job({ type: "pe", startBy: T0 + 1000, key: "k" }), job({ type: "pe", startBy: T0 + 2000 }), job({ type: "pe", startBy: T0 + 5000 }),
        job({ type: "pe.paused", startBy: T0 + 1000 }),
      ], T0);
      const r = await store.claim([gone!, edge!, ok!, pausedGone!], "n", T0 + 2000, LEASE);
      expect(r.jobs.map((j) => j.id).sort((a, b) => a - b)).toEqual([edge!, ok!]);
      expect(r.expired.sort((a, b) => a - b)).toEqual([gone!, pausedGone!]);
      expect(r.held).toEqual([]);
      expect(await store.get(gone!, T0 + 2000)).toMatchObject({
        state: "dead", lastError: "expired", failedAt: T0 + 2000, attempts: 0, key: "k", startBy: T0 + 1000,
      });
      expect(await store.get(pausedGone!, T0 + 2000)).toMatchObject({ state: "dead", lastError: "expired" });
      // A retry due after the deadline never starts either: the claim of the retried job expires it.
      expect(await store.retry([{ id: ok!, attempt: 1, runAt: T0 + 6000, error: "boom" }])).toEqual([true]);
      const again = await store.claim([ok!], "n", T0 + 6000, LEASE);
      expect(again).toEqual({ jobs: [], held: [], expired: [ok!] });
      expect(await store.get(ok!, T0 + 6000)).toMatchObject({ state: "dead", lastError: "expired", attempts: 1 });
      await store.complete([{ id: edge!, attempt: 1 }]);
      await store.resumeType("pe.paused");
      // Revived, an expired job has no deadline left and runs.
      const back = await store.retryDead([gone!], T0 + 7000);
      expect(back.map((e) => e.id)).toEqual([gone!]);
      expect(await store.get(gone!, T0 + 7000)).toMatchObject({ state: "pending", startBy: null, attempts: 0, lastError: "expired" });
      expect((await store.claim([gone!], "n", T0 + 7000, LEASE)).jobs.map((j) => j.id)).toEqual([gone!]);
      await store.complete([{ id: gone!, attempt: 1 }]);
      await store.deleteDead([ok!, pausedGone!]);
    });

    test("expirePending moves pending jobs past their deadline to dead, soonest deadline first and in batches, paused types too", async () => {
      const B = T0 + 50_000_000;
      await store.expirePending(B, 100_000); // what earlier tests left with a deadline before this one's
      await store.pauseType("px.paused", T0);
      const [d300, d100, d200, pausedD150, far, none, scheduled] = await store.insert([
        job({ type: "px", startBy: B + 300 }), job({ type: "px", startBy: B + 100 }), job({ type: "px", startBy: B + 200 }),
        job({ type: "px.paused", startBy: B + 150 }), job({ type: "px", startBy: B + 10_000 }), job({ type: "px" }),
        job({ type: "px", runAt: B + 50_000, startBy: B + 250 }),
      ], T0);
      const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
      expect((await store.expirePending(B + 1000, 2)).sort(byId)).toEqual([{ id: d100!, type: "px" }, { id: pausedD150!, type: "px.paused" }].sort(byId));
      expect((await store.expirePending(B + 1000, 10)).sort(byId))
        .toEqual([{ id: d200!, type: "px" }, { id: scheduled!, type: "px" }, { id: d300!, type: "px" }].sort(byId));
      expect(await store.expirePending(B + 1000, 10)).toEqual([]);
      for (const id of [d100!, d200!, d300!, pausedD150!, scheduled!]) {
        expect(await store.get(id, B + 1000)).toMatchObject({ state: "dead", lastError: "expired", failedAt: B + 1000, attempts: 0 });
      }
      expect((await store.get(far!, B + 1000))!.state).toBe("pending");
      expect((await store.get(none!, B + 1000))!.state).toBe("pending");
      await store.resumeType("px.paused");
      await store.deleteDead([d100!, d200!, d300!, pausedD150!, scheduled!]);
      await store.cancelPending([far!, none!]);
    });

    test("a job submitted to start at once of a paused type is inserted pending instead and says so", async () => {
      await store.pauseType("pl.paused", T0);
      const lease = { owner: "node-1", until: T0 + LEASE };
      const res = await store.add([
        job({ type: "pl.paused", lease }), job({ type: "pl.free", lease }), job({ type: "pl.paused", lease, idempotencyKey: "pl-key" }),
      ], T0);
      expect(res.map((r) => ({ duplicate: r.duplicate, held: r.held ?? false }))).toEqual([
        { duplicate: false, held: true }, { duplicate: false, held: false }, { duplicate: false, held: true },
      ]);
      expect(await store.get(res[0]!.id, T0)).toMatchObject({ state: "pending", attempts: 0, owner: null });
      expect(await store.get(res[1]!.id, T0)).toMatchObject({ state: "inflight", attempts: 1, owner: "node-1" });
      expect(await store.get(res[2]!.id, T0)).toMatchObject({ state: "pending", attempts: 0 });
      await store.resumeType("pl.paused");
      (await store.claim([res[0]!.id, res[2]!.id], "n", T0, LEASE)).jobs;
      await store.complete(res.map((r) => ({ id: r.id, attempt: 1 })));
    });

    test("every attempt that does not complete its job is on record, newest 20 kept, and goes with the job", async () => {
      const H = T0 + 5_000_000;
      const [a, b] = await store.insert([job({ type: "hist", maxAttempts: 100, runAt: H }), job({ type: "hist", maxAttempts: 2, runAt: H })], H);
      // A failure with a webhook's status, a timeout, a throttle (the attempt not used): one record each.
      (await store.claim([a!], "node-a", H + 1, LEASE)).jobs;
      expect(await store.retry([{ id: a!, attempt: 1, runAt: H, error: "webhook answered 500: é".padEnd(700, "x"), end: { outcome: "failed", endedAt: H + 11, status: 500 } }])).toEqual([true]);
      (await store.claim([a!], "node-b", H + 20, LEASE)).jobs;
      expect(await store.retry([{ id: a!, attempt: 2, runAt: H, error: "timed out after 5 ms", end: { outcome: "timeout", endedAt: H + 25 } }])).toEqual([true]);
      (await store.claim([a!], "node-b", H + 30, LEASE)).jobs;
      expect(await store.throttle([{ id: a!, attempt: 3, runAt: H, error: "busy", end: { outcome: "throttled", endedAt: H + 31, status: 429 } }])).toEqual([true]);
      // A stale attempt records nothing.
      expect(await store.retry([{ id: a!, attempt: 1, runAt: H, error: "late", end: { outcome: "failed", endedAt: H + 32 } }])).toEqual([false]);
      let view = await store.get(a!, H + 40);
      expect(view!.attemptHistory).toEqual([
        { attempt: 1, node: "node-a", startedAt: H + 1, endedAt: H + 11, outcome: "failed", status: 500, exitCode: null, error: expect.any(String) },
        { attempt: 2, node: "node-b", startedAt: H + 20, endedAt: H + 25, outcome: "timeout", status: null, exitCode: null, error: "timed out after 5 ms" },
        { attempt: 3, node: "node-b", startedAt: H + 30, endedAt: H + 31, outcome: "throttled", status: 429, exitCode: null, error: "busy" },
      ]);
      const kept = view!.attemptHistory![0]!.error!;
      expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(500);
      expect(kept.startsWith("webhook answered 500: é")).toBe(true);
      // 25 more failures: the newest 20 stay.
      for (let n = 3; n < 28; n++) {
        (await store.claim([a!], "node-a", H + 100 + n, LEASE)).jobs;
        expect(await store.retry([{ id: a!, attempt: n, runAt: H, error: `e${n}`, end: { outcome: "failed", endedAt: H + 100 + n, exitCode: n } }])).toEqual([true]);
      }
      view = await store.get(a!, H + 200);
      expect(view!.attemptHistory!.map((r) => r.error)).toEqual(Array.from({ length: 20 }, (_, i) => `e${i + 8}`));
      expect(view!.attemptHistory!.at(-1)).toMatchObject({ attempt: 27, exitCode: 27 });
      // A hand-back at shutdown records its attempt; a hand-back of a job nobody took records none.
      (await store.claim([a!], "node-a", H + 300, LEASE)).jobs;
      expect((await store.release([{ id: a!, attempt: 28 }], "node-a", H + 301, "shutdown")).map((e) => e.id)).toEqual([a!]);
      (await store.claim([a!], "node-a", H + 302, LEASE)).jobs;
      await store.release([{ id: a!, attempt: 28 }], "node-a", H + 303, null);
      expect((await store.get(a!, H + 304))!.attemptHistory!.at(-1)).toMatchObject({ attempt: 28, outcome: "shutdown", node: "node-a", endedAt: H + 301 });
      // An expired lease, taken back by the reaper.
      (await store.claim([a!], "node-c", H + 400, 10)).jobs;
      // (Rows other tests left inflight are reaped too: only this one is looked at.)
      expect((await store.reapExpired(H + 500, 100_000)).map((e) => e.id)).toContain(a!);
      expect((await store.get(a!, H + 501))!.attemptHistory!.at(-1)).toMatchObject({ attempt: 28, outcome: "lease_expired", node: "node-c", error: "lease expired" });
      // Completing the job takes its history with it (and a completed record would keep it).
      (await store.claim([a!], "node-a", H + 600, LEASE)).jobs;
      expect(await store.complete([{ id: a!, attempt: 29 }])).toEqual([true]);
      expect(await store.get(a!, H + 601)).toBeNull();
      // A dead job shows the story that led there, in GET /dead's listing too; deleting it forgets it.
      (await store.claim([b!], "node-a", H + 700, LEASE)).jobs;
      await store.retry([{ id: b!, attempt: 1, runAt: H, error: "first", end: { outcome: "failed", endedAt: H + 701 } }]);
      (await store.claim([b!], "node-a", H + 710, LEASE)).jobs;
      expect(await store.bury([{ id: b!, attempt: 2, error: "second", end: { outcome: "failed", endedAt: H + 711, exitCode: 3 } }], H + 711)).toEqual([true]);
      expect((await store.get(b!, H + 720))!.attemptHistory!.map((r) => [r.attempt, r.error, r.exitCode])).toEqual([[1, "first", null], [2, "second", 3]]);
      const listed = (await store.listDead({ afterId: b! - 1, limit: 1, type: "hist" }))[0]!;
      expect(listed.attemptHistory!.map((r) => r.error)).toEqual(["first", "second"]);
      // Retried by an operator, its history stays with it.
      await store.retryDead([b!], H + 730);
      expect((await store.get(b!, H + 731))!.attemptHistory).toHaveLength(2);
      (await store.claim([b!], "node-a", H + 740, LEASE)).jobs;
      await store.bury([{ id: b!, attempt: 1, error: "third" }], H + 741);
      expect(await store.deleteDead([b!])).toEqual([true]);
      // The same id is gone everywhere: a new job never inherits a history.
      expect(await store.get(b!, H + 742)).toBeNull();
    });

    test("a kept completed record keeps its history, ends it with the completing attempt's node and duration, and loses it when pruned", async () => {
      const K = T0 + 6_000_000;
      const [id] = await store.insert([job({ type: "histk", runAt: K })], K);
      (await store.claim([id!], "node-a", K + 1, LEASE)).jobs;
      await store.retry([{ id: id!, attempt: 1, runAt: K, error: "no", end: { outcome: "failed", endedAt: K + 2, status: 503 } }]);
      (await store.claim([id!], "node-b", K + 10, LEASE)).jobs;
      expect(await store.complete([{ id: id!, attempt: 2, result: "ok", runMs: 7 }], { finishedAt: K + 17, expiresAt: K + 100 })).toEqual([true]);
      expect((await store.get(id!, K + 20))!.attemptHistory).toEqual([
        { attempt: 1, node: "node-a", startedAt: K + 1, endedAt: K + 2, outcome: "failed", status: 503, exitCode: null, error: "no" },
        { attempt: 2, node: "node-b", startedAt: K + 10, endedAt: K + 17, outcome: "completed", status: null, exitCode: null, error: null },
      ]);
      expect(await store.pruneCompleted(K + 100, 10, 0)).toBeGreaterThanOrEqual(1);
      expect(await store.get(id!, K + 101)).toBeNull();
      // Nothing of it is left to read: a job inserted now under a new id has no history.
      const [fresh] = await store.insert([job({ type: "histk", runAt: K })], K + 102);
      expect((await store.get(fresh!, K + 102))!.attemptHistory).toEqual([]);
      await store.cancelPending([fresh!]);
    });
  });
}
