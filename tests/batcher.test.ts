// batcher.test.ts: group commit: what arrives while a flush is out leaves together in the next
// one, each caller gets its own result, failures reach exactly the callers of that flush.
import { expect, test } from "bun:test";
import { createBatcher } from "../src/queue/batcher.ts";
import { StoreOutcomeUnknownError, StoreRejectedError, StoreUnavailableError } from "../src/errors.ts";

function gatedRunner() {
  const flushes: number[][] = [];
  const gates: Array<() => void> = [];
  const run = async (items: number[]) => {
    flushes.push(items);
    await new Promise<void>((r) => gates.push(r));
    return items.map((x) => x * 10);
  };
  return { flushes, gates, run };
}

test("an idle batcher flushes the first item at once; items arriving meanwhile share the next flush", async () => {
  const r = gatedRunner();
  const b = createBatcher<number, number>({ run: r.run, maxBatch: 100 });
  const first = b.add(1);
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1]]);
  const rest = [b.add(2), b.add(3), b.add(4)];
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1]]); // still waiting for the first commit
  r.gates.shift()!();
  expect(await first).toBe(10);
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1], [2, 3, 4]]);
  r.gates.shift()!();
  expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  await b.drain();
});

test("maxBatch splits by weight, and a failed flush rejects only its own callers", async () => {
  let calls = 0;
  const b = createBatcher<number[], number>({
    maxBatch: 3,
    weight: (xs) => xs.length,
    run: async (batches) => {
      calls++;
      if (batches.some((xs) => xs.includes(13))) throw new Error("unlucky");
      return batches.map((xs) => xs.length);
    },
  });
  const results = await Promise.allSettled([b.add([1, 2]), b.add([3]), b.add([13]), b.add([4, 5, 6, 7])]);
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
  expect((results[3] as PromiseFulfilledResult<number>).value).toBe(4); // heavier than maxBatch: alone
  expect(calls).toBe(3);
});

test("maxInFlight lets that many flushes overlap, and drain waits for all of them", async () => {
  const r = gatedRunner();
  const b = createBatcher<number, number>({ run: r.run, maxBatch: 100, maxInFlight: 2 });
  const a = b.add(1);
  await Bun.sleep(0);
  const c = b.add(2);
  await Bun.sleep(0);
  const d = b.add(3);
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1], [2]]); // two out, the third waits
  let drained = false;
  const draining = b.drain().then(() => (drained = true));
  r.gates.shift()!();
  await a;
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1], [2], [3]]);
  r.gates.shift()!();
  r.gates.shift()!();
  expect(await Promise.all([c, d])).toEqual([20, 30]);
  await draining;
  expect(drained).toBe(true);
});

test("overlapMinWeight: a second flush goes out only once it carries that much; a lighter one waits for the flush out", async () => {
  const r = gatedRunner();
  const b = createBatcher<number, number>({ run: r.run, maxBatch: 100, maxInFlight: 2, overlapMinWeight: 3 });
  const first = b.add(1);
  await Bun.sleep(0);
  const light = [b.add(2), b.add(3)];
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1]]); // a slot is free, but two items are not worth a commit of their own
  const heavy = b.add(4);
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1], [2, 3, 4]]); // three are: they overlap the first
  const late = b.add(5);
  await Bun.sleep(0);
  expect(r.flushes.length).toBe(2); // both slots taken
  r.gates.shift()!();
  expect(await first).toBe(10);
  await Bun.sleep(0);
  expect(r.flushes.length).toBe(2); // one flush still out, one light item: it waits for it
  r.gates.shift()!();
  expect(await Promise.all([...light, heavy])).toEqual([20, 30, 40]);
  await Bun.sleep(0);
  expect(r.flushes).toEqual([[1], [2, 3, 4], [5]]); // nothing out: it goes alone
  r.gates.shift()!();
  expect(await late).toBe(50);
  await b.drain();
});

test("a flush that fails for one member's data is retried in halves: only that member gets the error", async () => {
  const flushes: number[][] = [];
  const b = createBatcher<number, number>({
    maxBatch: 100,
    defer: (fn) => void setImmediate(fn),
    run: async (items) => {
      flushes.push(items);
      if (items.includes(13)) throw new StoreRejectedError("13 is refused");
      return items.map((x) => x * 10);
    },
  });
  const items = Array.from({ length: 16 }, (_, i) => i + 1);
  const results = await Promise.allSettled(items.map((x) => b.add(x)));
  expect(results.filter((r) => r.status === "rejected").length).toBe(1);
  expect((results[12] as PromiseRejectedResult).reason).toBeInstanceOf(StoreRejectedError);
  for (const [i, r] of results.entries()) if (i !== 12) expect((r as PromiseFulfilledResult<number>).value).toBe((i + 1) * 10);
  // One failing member among 16: the whole, then one failing half per level down to it (log2 16 = 4).
  expect(flushes[0]).toHaveLength(16);
  expect(flushes.filter((f) => f.includes(13)).map((f) => f.length)).toEqual([16, 8, 4, 2, 1]);
});

test("a flush that fails because the store is down or did not answer is not retried: every member gets the error", async () => {
  for (const err of [new StoreUnavailableError("down"), new StoreOutcomeUnknownError("no answer")]) {
    let calls = 0;
    const b = createBatcher<number, number>({
      maxBatch: 100,
      defer: (fn) => void setImmediate(fn),
      run: async () => {
        calls++;
        throw err;
      },
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((x) => b.add(x)));
    expect(results.every((r) => r.status === "rejected" && r.reason === err)).toBe(true);
    expect(calls).toBe(1);
  }
});
