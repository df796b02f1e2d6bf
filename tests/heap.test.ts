// heap.test.ts: PriorityHeap against a sort oracle on random data, with ties and growth.
import { describe, expect, test } from "bun:test";
import { PriorityHeap } from "../src/queue/heap.ts";
import { prng } from "./support/prng.ts";


type Entry = { id: number; key: number; prio: number };
const order = (a: Entry, b: Entry) => a.key - b.key || a.prio - b.prio || a.id - b.id;

describe("PriorityHeap", () => {
  test("an empty heap pops -1 and peeks nothing", () => {
    const h = new PriorityHeap(2);
    expect(h.size).toBe(0);
    expect(h.pop()).toBe(-1);
    expect(h.peekId()).toBe(-1);
    expect(h.peekKey()).toBe(Infinity);
  });

  for (const seed of [1, 2, 3, 42, 1234]) {
    test(`pops in oracle order with many ties and growth past several doublings (seed ${seed})`, () => {
      const rand = prng(seed);
      const h = new PriorityHeap(2);
      const entries: Entry[] = [];
      for (let i = 0; i < 5000; i++) {
        // Few distinct keys and priorities, so ties on key and on priority are common.
        const e = { id: i + 1, key: Math.floor(rand() * 50) * 1000, prio: Math.floor(rand() * 4) };
        entries.push(e);
        h.push(e.id, e.key, e.prio);
      }
      expect(h.size).toBe(5000);
      entries.sort(order);
      for (const e of entries) {
        expect(h.peekId()).toBe(e.id);
        expect(h.pop()).toBe(e.id);
        expect(h.lastKey).toBe(e.key);
        expect(h.lastPriority).toBe(e.prio);
      }
      expect(h.pop()).toBe(-1);
    });
  }

  test("interleaved pushes and pops always return the current minimum", () => {
    const rand = prng(7);
    const h = new PriorityHeap(4);
    const live: Entry[] = [];
    let nextId = 1;
    for (let step = 0; step < 20_000; step++) {
      if (live.length === 0 || rand() < 0.55) {
        const e = { id: nextId++, key: Math.floor(rand() * 200) - 100.5, prio: Math.floor(rand() * 101) };
        live.push(e);
        h.push(e.id, e.key, e.prio);
      } else {
        live.sort(order);
        const want = live.shift()!;
        expect(h.pop()).toBe(want.id);
        expect(h.lastKey).toBe(want.key);
        expect(h.lastPriority).toBe(want.prio);
      }
      expect(h.size).toBe(live.length);
    }
  });

  test("distinct float keys come out sorted from a heap grown from capacity 1", () => {
    const rand = prng(99);
    const h = new PriorityHeap(1);
    const entries: Entry[] = [];
    for (let i = 0; i < 20_000; i++) {
      const e = { id: i, key: (rand() - 0.5) * 1e6, prio: Math.floor(rand() * 101) };
      entries.push(e);
      h.push(e.id, e.key, e.prio);
    }
    entries.sort(order);
    for (const e of entries) {
      expect(h.pop()).toBe(e.id);
      expect(h.lastKey).toBe(e.key);
    }
  });

  test("a drained heap behaves as empty and refills in order", () => {
    const h = new PriorityHeap(0);
    for (let i = 0; i < 10; i++) h.push(i, 10 - i, 0);
    for (let i = 0; i < 10; i++) h.pop();
    expect(h.size).toBe(0);
    expect(h.pop()).toBe(-1);
    expect(h.peekId()).toBe(-1);
    expect(h.peekKey()).toBe(Infinity);
    h.push(3, 7, 1);
    h.push(2, 7, 1);
    h.push(1, 7, 2);
    expect([h.pop(), h.pop(), h.pop()]).toEqual([2, 3, 1]);
  });

  test("clear empties it and it stays usable; forEachKeyPriority visits every entry", () => {
    const h = new PriorityHeap();
    for (let i = 0; i < 100; i++) h.push(i, 100 - i, i % 3);
    let sum = 0;
    h.forEachKeyPriority((key, prio, id) => {
      expect(key).toBe(100 - id);
      expect(prio).toBe(id % 3);
      sum += id;
    });
    expect(sum).toBe(4950);
    h.clear();
    expect(h.size).toBe(0);
    h.push(9, 1, 0);
    expect(h.pop()).toBe(9);
  });

  // pop() and remove() leave a hole at the root that the next push() fills; every other operation
  // must see a valid heap. Random interleavings of every method, weighted towards pop-then-push and
  // pop-then-peek, against a sorted-array oracle.
  for (const seed of [11, 12, 13, 14, 15, 16]) {
    test(`random interleavings of every method match a sorted-array oracle (seed ${seed})`, () => {
      const rand = prng(seed);
      const h = new PriorityHeap(1 + Math.floor(rand() * 4));
      type Tagged = Entry & { tag: number };
      let live: Tagged[] = []; // kept sorted by order
      let nextId = 1;
      let maxSize = 0;
      // Few keys and priorities so ties on key, and on key and priority, are common.
      const keySpan = seed % 2 === 0 ? 8 : 60;
      const push = () => {
        const e = { id: nextId++, key: Math.floor(rand() * keySpan) - 3, prio: Math.floor(rand() * 3) * 100, tag: Math.floor(rand() * 65536) };
        h.push(e.id, e.key, e.prio, e.tag);
        let i = live.length;
        while (i > 0 && order(live[i - 1]!, e) > 0) i--;
        live.splice(i, 0, e);
      };
      const pop = () => {
        const want = live.shift();
        expect(h.pop()).toBe(want ? want.id : -1);
        if (want) {
          expect(h.lastKey).toBe(want.key);
          expect(h.lastPriority).toBe(want.prio);
          expect(h.lastTag).toBe(want.tag);
        }
      };
      // Any one of the peeks may be the first call after a pop, so each must fill the hole itself.
      const peeks = [
        () => expect(h.peekId()).toBe(live[0] ? live[0].id : -1),
        () => expect(h.peekKey()).toBe(live[0] ? live[0].key : Infinity),
        () => live[0] && expect(h.peekPriority()).toBe(live[0].prio),
      ];
      const peek = () => {
        const first = Math.floor(rand() * 3);
        for (let i = 0; i < 3; i++) peeks[(first + i) % 3]!();
      };
      for (let step = 0; step < 20_000; step++) {
        const r = rand();
        // Drift the heap's size up and down so it grows past several doublings, drains to empty
        // and refills.
        const pushBias = Math.sin(step / 700) * 0.25;
        if (r < 0.4 + pushBias) push();
        else if (r < 0.55) pop();
        else if (r < 0.67) {
          pop();
          push();
        } else if (r < 0.75) {
          pop();
          peek();
        } else if (r < 0.82) peek();
        else if (r < 0.85) {
          pop();
          pop();
        } else if (r < 0.92) {
          expect(h.size).toBe(live.length);
        } else if (r < 0.97) {
          // Remove a random entry (sometimes right after a pop, with the hole pending) or a missing id.
          if (rand() < 0.3) pop();
          if (live.length === 0 || rand() < 0.1) expect(h.remove(nextId + 1)).toBe(false);
          else {
            const i = Math.floor(rand() * live.length);
            expect(h.remove(live[i]!.id)).toBe(true);
            live.splice(i, 1);
          }
        } else if (r < 0.9995) {
          if (rand() < 0.5) pop(); // visit with a hole pending, too
          const seen: [number, number, number][] = [];
          h.forEachKeyPriority((key, prio, id) => seen.push([id, key, prio]));
          seen.sort((a, b) => a[0] - b[0]);
          expect(seen).toEqual([...live].sort((a, b) => a.id - b.id).map((e) => [e.id, e.key, e.prio]));
        } else {
          if (rand() < 0.5) pop(); // clear with a hole pending, too
          h.clear();
          live = [];
        }
        maxSize = Math.max(maxSize, live.length);
        expect(h.size).toBe(live.length);
      }
      expect(maxSize).toBeGreaterThan(64); // it grew from its tiny initial capacity
      while (live.length > 0) pop();
      pop();
      peek();
      expect(h.size).toBe(0);
    });
  }

  test("pop then push reuses the root hole and keeps order, tags and sizes", () => {
    const h = new PriorityHeap(2);
    for (const [id, key] of [[1, 5], [2, 3], [3, 8], [4, 3]] as const) h.push(id, key, 0, id * 10);
    expect(h.pop()).toBe(2);
    expect(h.lastTag).toBe(20);
    expect(h.size).toBe(3);
    h.push(5, 1, 0, 50); // goes straight to the top through the hole
    expect(h.size).toBe(4);
    expect(h.peekId()).toBe(5);
    h.push(6, 3, 0, 60); // after the hole is filled: an ordinary push
    expect([h.pop(), h.pop(), h.pop(), h.pop(), h.pop(), h.pop()]).toEqual([5, 4, 6, 1, 3, -1]);
    expect(h.lastTag).toBe(30);
    expect(h.size).toBe(0);
    h.push(7, 0, 0);
    expect(h.pop()).toBe(7);
    expect(h.pop()).toBe(-1);
    expect(h.size).toBe(0);
    h.push(8, 2, 0);
    expect(h.size).toBe(1);
    expect(h.peekKey()).toBe(2);
  });

  test("ids up to 2^53 survive the Float64Array round trip", () => {
    const h = new PriorityHeap();
    h.push(Number.MAX_SAFE_INTEGER, 5, 0);
    h.push(2 ** 40 + 1, 5, 0);
    expect(h.pop()).toBe(2 ** 40 + 1);
    expect(h.pop()).toBe(Number.MAX_SAFE_INTEGER);
  });
});
