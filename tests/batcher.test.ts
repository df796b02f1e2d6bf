// batcher.test.ts: group commit: what arrives while a flush is out leaves together in the next
// one, each caller gets its own result, failures reach exactly the callers of that flush.
import { expect, test } from "bun:test";
import { createBatcher } from "../src/batcher.ts";

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
