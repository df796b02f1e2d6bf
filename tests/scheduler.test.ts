// scheduler.test.ts: aging order, ties, scheduled jobs and the timer, on a fake clock.
import { describe, expect, test } from "bun:test";
import { ReadyBatch, createScheduler } from "../src/queue/scheduler.ts";

/** A batch's entries as columns, to compare with expected lists. */
function columns(out: ReadyBatch) {
  const entries = out.entries.slice(0, out.length);
  return {
    ids: entries.map((e) => e.id),
    readyAts: entries.map((e) => e.readyAt),
    priorities: entries.map((e) => e.priority),
    types: entries.map((e) => e.type),
  };
}

function popAll(s: ReturnType<typeof createScheduler>) {
  const out = new ReadyBatch();
  s.popReady(Infinity, out);
  return columns(out);
}

describe("scheduler", () => {
  test("higher priority runs first among jobs ready at the same time", () => {
    const now = 1_000_000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(1, 0, now, now);
    s.add(2, 50, now, now);
    s.add(3, 10, now, now);
    expect(popAll(s).ids).toEqual([2, 3, 1]);
  });

  test("a low-priority job that waited long enough overtakes newer high-priority ones", () => {
    let now = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(1, 0, 0, 0); // A: priority 0, ready at 0 → key 0
    now = 6000;
    s.add(2, 5, 6000, now); // B: priority 5, ready at 6 s → key 1000: A has waited more than 5 levels
    s.add(3, 5, 4000, now); // C: priority 5, ready at 4 s → key −1000: C beats A
    expect(popAll(s).ids).toEqual([3, 1, 2]);
  });

  test("equal keys go to the earlier ready time, then the lower id", () => {
    const now = 10_000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(7, 1, 2000, now); // key 1000, ready at 2000
    s.add(5, 0, 1000, now); // key 1000, ready at 1000 (earlier)
    s.add(9, 0, 1000, now); // same key and ready time, higher id
    expect(popAll(s).ids).toEqual([5, 9, 7]);
  });

  test("agingMs 0 is plain FIFO by ready time", () => {
    const now = 5000;
    const s = createScheduler({ agingMs: 0, clock: () => now });
    s.add(1, 100, 3000, now);
    s.add(2, 0, 1000, now);
    s.add(3, 50, 2000, now);
    expect(popAll(s).ids).toEqual([2, 3, 1]);
  });

  test("future jobs wait in the scheduled heap until due, then report their run time as ready time", () => {
    let now = 0;
    let readySignals = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => now, onReady: () => readySignals++ });
    s.add(1, 0, 500, now);
    s.add(2, 3, 200, now);
    expect(s.readyCount).toBe(0);
    expect(s.scheduledCount).toBe(2);
    expect(s.nextRunAt()).toBe(200);
    expect(popAll(s).ids).toEqual([]);
    expect(s.promoteDue(199)).toBe(0);
    expect(s.promoteDue(200)).toBe(1);
    expect(readySignals).toBe(1);
    now = 600;
    const out = popAll(s); // popReady promotes what is due by the clock
    expect(out.ids).toEqual([2, 1]);
    expect(out.readyAts).toEqual([200, 500]);
    expect(out.priorities).toEqual([3, 0]);
  });

  test("oldestReadyAt is the earliest ready time, whatever the priorities", () => {
    const now = 10_000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    expect(s.oldestReadyAt()).toBeNull();
    s.add(1, 100, 9000, now);
    s.add(2, 0, 4000, now);
    s.add(3, 50, 8000, now);
    expect(s.oldestReadyAt()).toBe(4000);
  });

  test("the timer promotes a scheduled job when it falls due", async () => {
    let signalled: () => void = () => {};
    const promoted = new Promise<void>((r) => (signalled = r));
    const s = createScheduler({ agingMs: 1000, clock: Date.now, onReady: () => signalled() });
    s.start();
    s.add(42, 0, Date.now() + 20, Date.now());
    await promoted;
    expect(s.readyCount).toBe(1);
    s.stop();
  });
});

test("with agingMs 0, jobs ready at the same moment keep id order whatever their priority", () => {
  const s = createScheduler({ agingMs: 0, clock: () => 100 });
  s.add(3, 0, 50, 100);
  s.add(4, 90, 50, 100);
  s.add(2, 40, 50, 100);
  expect(popAll(s).ids).toEqual([2, 3, 4]);
});

describe("scheduler batches and signals", () => {
  test("popReady takes at most max jobs and leaves the rest in order", () => {
    const now = 1000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    for (let id = 1; id <= 5; id++) s.add(id, id, now, now);
    const out = new ReadyBatch();
    expect(s.popReady(2, out)).toBe(2);
    expect(columns(out).ids).toEqual([5, 4]);
    expect(s.readyCount).toBe(3);
    expect(s.popReady(10, out)).toBe(3);
    expect(columns(out).ids).toEqual([5, 4, 3, 2, 1]);
    expect(columns(out).readyAts).toEqual([1000, 1000, 1000, 1000, 1000]);
    expect(s.popReady(10, out)).toBe(0);
  });

  test("types that share a room take no more than it between them, in the heap's order; the others go on", () => {
    const now = 1000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    // a and b share a room of 3; c does not. Priorities interleave the three types.
    for (let i = 0; i < 4; i++) {
      s.add(10 + i, 90 - i * 10, now, now, "a");
      s.add(20 + i, 85 - i * 10, now, now, "b");
      s.add(30 + i, 80 - i * 10, now, now, "c");
    }
    const members: boolean[] = [];
    for (let code = 0; code < s.typeCount; code++) members[code] = s.typeName(code) !== "c";
    const shared = { members, left: 3 };
    const out = new ReadyBatch();
    expect(s.popReady(8, out, undefined, shared)).toBe(7);
    expect(columns(out).ids).toEqual([10, 20, 11, 30, 31, 32, 33]);
    expect(shared.left).toBe(0);
    // What the shared room held back is still there, in order.
    out.clear();
    expect(s.popReady(10, out)).toBe(5);
    expect(columns(out).ids).toEqual([21, 12, 22, 13, 23]);
  });

  test("a cleared batch is refilled with the entry objects it already holds", () => {
    const s = createScheduler({ agingMs: 1000, clock: () => 0 });
    for (let id = 1; id <= 3; id++) s.add(id, 0, 0, 0, "t");
    const out = new ReadyBatch();
    s.popReady(3, out);
    const held = out.entries.slice();
    s.add(7, 2, 0, 0, "u");
    out.clear();
    expect(s.popReady(10, out)).toBe(1);
    expect(out.entries[0]).toBe(held[0]!);
    expect(columns(out)).toEqual({ ids: [7], readyAts: [0], priorities: [2], types: ["u"] });
    expect(out.entries.length).toBe(3);
  });

  test("a job that is due on add signals onReady; a future one waits for promoteDue", () => {
    let signals = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => 0, onReady: () => signals++ });
    s.add(1, 0, 0, 0);
    expect(signals).toBe(1);
    s.add(2, 0, 300, 0);
    s.add(3, 0, 100, 0);
    expect(signals).toBe(1);
    expect(s.promoteDue(50)).toBe(0);
    expect(signals).toBe(1);
    expect(s.promoteDue(300)).toBe(2);
    expect(signals).toBe(2);
    expect(s.nextRunAt()).toBeNull();
  });

  test("clear forgets ready and scheduled jobs", () => {
    const s = createScheduler({ agingMs: 1000, clock: () => 0 });
    s.add(1, 0, 0, 0);
    s.add(2, 0, 500, 0);
    s.clear();
    expect(s.readyCount).toBe(0);
    expect(s.scheduledCount).toBe(0);
    expect(s.oldestReadyAt()).toBeNull();
    expect(s.nextRunAt()).toBeNull();
  });

  test("a job scheduled before the armed timer's target re-arms the timer for it", async () => {
    let signalled: () => void = () => {};
    const promoted = new Promise<void>((r) => (signalled = r));
    const s = createScheduler({ agingMs: 1000, clock: Date.now, onReady: () => signalled() });
    s.add(1, 0, Date.now() + 3_600_000, Date.now()); // arms an hour ahead
    s.start();
    s.add(2, 0, Date.now() + 20, Date.now());
    await promoted;
    const out = new ReadyBatch();
    s.popReady(10, out);
    expect(columns(out).ids).toEqual([2]);
    expect(s.scheduledCount).toBe(1);
    s.stop();
  });
});

describe("job types", () => {
  test("jobs of many types still come out in one global order (checked against a sort)", () => {
    const now = 1_000_000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const jobs = Array.from({ length: 2000 }, (_, i) => ({
      id: i + 1, priority: Math.floor(rand() * 101), readyAt: now - Math.floor(rand() * 200_000), type: `t${Math.floor(rand() * 7)}`,
    }));
    for (const j of jobs) s.add(j.id, j.priority, j.readyAt, now, j.type);
    const expected = [...jobs]
      .sort((a, b) => a.readyAt - a.priority * 1000 - (b.readyAt - b.priority * 1000) || a.priority - b.priority || a.id - b.id)
      .map((j) => j.id);
    expect(popAll(s).ids).toEqual(expected);
  });

  test("room limits how many of a type one pop takes, skips a type with none, and keeps its jobs in order", () => {
    const now = 10_000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(1, 50, now, now, "busy");
    s.add(2, 40, now, now, "busy");
    s.add(3, 0, now, now, "free");
    s.add(4, 30, now, now, "busy");
    const busy = 0; // codes follow first sight
    const room: number[] = [];
    room[busy] = 1;
    const out = new ReadyBatch();
    expect(s.popReady(10, out, room)).toBe(2);
    expect(columns(out).ids).toEqual([1, 3]);
    expect(columns(out).types).toEqual(["busy", "free"]);
    expect(s.typeName(busy)).toBe("busy");
    expect(room[busy]).toBe(0);
    expect(s.readyOf("busy")).toBe(2);
    expect(s.popReady(10, new ReadyBatch(), [0, 0])).toBe(0);
    expect(popAll(s).ids).toEqual([2, 4]);
    expect(s.readyCount).toBe(0);
  });

  test("a scheduled job keeps its type when it falls due", () => {
    let now = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(9, 0, 500, now, "later");
    now = 600;
    const out = new ReadyBatch();
    s.popReady(5, out);
    expect(columns(out).ids).toEqual([9]);
    expect(columns(out).types).toEqual(["later"]);
    expect(s.typeCount).toBe(1);
  });
});

describe("keys take turns within a type", () => {
  const keysOf = (out: ReadyBatch) => out.entries.slice(0, out.length).map((e) => e.key);

  test("a key with 10,000 ready jobs delays another key's first job by one turn, whatever their priorities", () => {
    const now = 1_000_000;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    for (let i = 1; i <= 10_000; i++) s.add(i, 100, now - 60_000, now, "t", "big");
    s.add(20_001, 0, now, now, "t", "small");
    s.add(20_002, 0, now, now, "t", "small");
    const out = new ReadyBatch();
    s.popReady(4, out);
    expect(keysOf(out)).toEqual(["big", "small", "big", "small"]);
    // Within a key, priority and aging still decide: the big key's jobs come out in id order (same key).
    expect(out.entries.slice(0, 4).filter((e) => e.key === "big").map((e) => e.id)).toEqual([1, 2]);
  });

  test("with K keys waiting, a key that becomes ready waits at most K turns of its type", () => {
    const now = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    let id = 0;
    for (const key of ["a", "b", "c"]) for (let i = 0; i < 100; i++) s.add(++id, 50, now, now, "t", key);
    const out = new ReadyBatch();
    s.popReady(2, out); // a, b: the ring is now c, a, b
    s.add(9999, 0, now, now, "t", "late");
    out.clear();
    s.popReady(4, out);
    expect(keysOf(out)).toEqual(["c", "a", "b", "late"]);
  });

  test("priority within a key, and types still compete by the urgency of the job whose turn it is", () => {
    const now = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(1, 10, now, now, "t", "k");
    s.add(2, 90, now, now, "t", "k");
    s.add(3, 50, now, now, "other");
    const out = new ReadyBatch();
    s.popReady(3, out);
    expect(out.entries.slice(0, 3).map((e) => e.id)).toEqual([2, 3, 1]);
  });

  test("a held key leaves the turns until its hold ends; other keys go on; a scheduled job keeps its key", () => {
    let now = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(1, 0, 0, 0, "t", "held");
    s.add(2, 0, 0, 0, "t", "free");
    s.add(3, 0, 500, 0, "t", "held");
    s.holdKey("t", "held", 1000);
    expect(s.keyHeld("t", "held")).toBe("key_concurrency");
    expect(s.keyHeld("t", "free")).toBeNull();
    const out = new ReadyBatch();
    expect(s.popReady(10, out)).toBe(1);
    expect(out.entries[0]!.key).toBe("free");
    now = 1000;
    out.clear();
    expect(s.popReady(10, out)).toBe(2);
    expect(out.entries.slice(0, 2).map((e) => [e.id, e.key])).toEqual([[1, "held"], [3, "held"]]);
    expect(s.readyCount).toBe(0);
  });

  test("releaseKey ends a hold at once and remove() finds a job in any lane", () => {
    const now = 0;
    const s = createScheduler({ agingMs: 1000, clock: () => now });
    s.add(1, 0, 0, 0, "t", "k");
    s.add(2, 0, 0, 0, "t", "k");
    s.holdKey("t", "k", 60_000);
    const out = new ReadyBatch();
    expect(s.popReady(10, out)).toBe(0);
    s.releaseKey("t", "k");
    expect(s.remove(2)).toBe(true);
    expect(s.popReady(10, out)).toBe(1);
    expect(out.entries[0]!.id).toBe(1);
    s.stop();
  });
});
