// schedules.test.ts: recurring schedules: the types file's [schedules], tick arithmetic across DST
// changes (croner's documented rules), the ticker on each real store with a controlled clock (each
// tick once, catch_up after a downtime, two nodes offering the same ticks), and GET /schedules.
import { afterAll, describe, expect, test } from "bun:test";
import { parseTypesFile } from "../src/config/types-file.ts";
import type { ScheduleConfig } from "../src/config/schedules.ts";
import { createHandlerRegistry } from "../src/handlers/handler.ts";
import { createLogger } from "../src/logger.ts";
import { createScheduleTicker, tickRule } from "../src/queue/schedules.ts";
import type { Store } from "../src/store/store.ts";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const defaults = { timeoutMs: 30_000, maxAttempts: 5 };
const iso = (ms: number[]) => ms.map((t) => new Date(t).toISOString());

describe("the types file's [schedules]", () => {
  test("cron and every schedules are read with their defaults", () => {
    const { schedules } = parseTypesFile(`
[types.report]
builtin = "noop"

[schedules.nightly-report]
cron = "0 3 * * *"
type = "report"
timezone = "Europe/Berlin"
payload = { kind = "daily", pages = [1, 2] }
priority = 40
key = "reports"
catch_up = "all"

[schedules.heartbeat]
every = "30s"
type = "report"
`, "toml", defaults);
    expect(schedules).toEqual([
      { name: "nightly-report", type: "report", cron: "0 3 * * *", timezone: "Europe/Berlin", payload: '{"kind":"daily","pages":[1,2]}', priority: 40, key: "reports", catchUp: "all" },
      { name: "heartbeat", type: "report", everyMs: 30_000, timezone: "UTC", payload: "null", catchUp: "last" },
    ]);
  });

  const bad: [string, string][] = [
    ['cron = "0 3 * * *"\ntype = "nope"', 'schedules.s.type: unknown job type "nope"'],
    ['type = "t"', "schedules.s: expected exactly one of cron or every"],
    ['cron = "0 3 * * *"\nevery = "1m"\ntype = "t"', "schedules.s: expected exactly one of cron or every"],
    ['cron = "61 3 * * *"\ntype = "t"', "schedules.s.cron: not a cron expression"],
    ['cron = "0 3 * * *"\ntype = "t"\ntimezone = "Mars/Olympus"', "schedules.s.timezone: expected an IANA time zone"],
    ['every = "500ms"\ntype = "t"', "schedules.s.every: expected a duration from 1s to 366d"],
    ['every = "1m"\ntype = "t"\ntimezone = "UTC"', "schedules.s.timezone: only allowed with cron"],
    ['every = "1m"\ntype = "t"\ncatch_up = "some"', 'schedules.s.catch_up: expected "none", "last" or "all"'],
    ['every = "1m"\ntype = "t"\nextra = 1', "schedules.s.extra: unknown key"],
  ];
  for (const [body, message] of bad) {
    test(`refused: ${message}`, () => {
      expect(() => parseTypesFile(`[types.t]\nbuiltin = "noop"\n\n[schedules.s]\n${body}\n`, "toml", defaults)).toThrow(message);
    });
  }
});

describe("ticks across DST changes (America/New_York, croner's rules)", () => {
  test("spring forward: a daily 02:30 that does not exist that night runs at 03:00, once", () => {
    const rule = tickRule({ cron: "30 2 * * *", timezone: "America/New_York" });
    expect(iso(rule.latest(Date.parse("2026-03-07T00:00:00Z"), Date.parse("2026-03-09T23:00:00Z"), 10)))
      .toEqual(["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"]);
  });

  test("fall back: a daily 01:30 that happens twice runs at the first, once; a half-hourly runs on both", () => {
    const daily = tickRule({ cron: "30 1 * * *", timezone: "America/New_York" });
    expect(iso(daily.latest(Date.parse("2026-10-31T12:00:00Z"), Date.parse("2026-11-02T12:00:00Z"), 10)))
      .toEqual(["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
    const halfHourly = tickRule({ cron: "*/30 * * * *", timezone: "America/New_York" });
    expect(iso(halfHourly.latest(Date.parse("2026-11-01T04:50:00Z"), Date.parse("2026-11-01T06:40:00Z"), 10)))
      .toEqual(["2026-11-01T05:00:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-01T06:00:00.000Z", "2026-11-01T06:30:00.000Z"]);
    expect(halfHourly.next(Date.parse("2026-11-01T06:30:00Z"))).toBe(Date.parse("2026-11-01T07:00:00Z"));
    expect(halfHourly.count(Date.parse("2026-11-01T04:50:00Z"), Date.parse("2026-11-01T06:40:00Z"), 100)).toBe(4);
    expect(halfHourly.count(Date.parse("2026-11-01T04:50:00Z"), Date.parse("2026-11-01T06:40:00Z"), 3)).toBe(3);
  });

  test("every: multiples of the interval since the epoch, whoever computes them", () => {
    const rule = tickRule({ everyMs: 30_000, timezone: "UTC" });
    expect(rule.next(1_000_010_000)).toBe(1_000_020_000);
    expect(rule.latest(1_000_000_000, 1_000_095_000, 10)).toEqual([1_000_020_000, 1_000_050_000, 1_000_080_000]);
    expect(rule.latest(1_000_000_000, 1_000_095_000, 2)).toEqual([1_000_050_000, 1_000_080_000]);
    expect(rule.count(1_000_000_000, 1_000_095_000, 10)).toBe(3);
    expect(rule.count(1_000_000_000, 1_000_095_000, 2)).toBe(2);
  });
});

for (const kind of STORE_KINDS) {
  describe(`the ticker on ${kind}, with a controlled clock`, () => {
    const drops: Array<() => Promise<void>> = [];
    const stores: Store[] = [];
    afterAll(async () => {
      for (const s of stores) await s.close().catch(() => {});
      for (const d of drops) await d();
    });
    async function freshStore() {
      const site = await storeSite(kind);
      drops.push(site.drop);
      const store = site.open();
      stores.push(store);
      await store.migrate();
      return { store, site };
    }
    const registry = createHandlerRegistry({ timeoutMs: 1000, maxAttempts: 3, priority: 0 });
    registry.register("report", () => {});

    function ticker(store: Store, schedules: ScheduleConfig[], clock: { now: number }) {
      const enqueued: number[] = [];
      const skipped = { count: 0 };
      const t = createScheduleTicker({
        store, schedules, registry, clock: () => clock.now, logger: createLogger("silent"),
        onEnqueued: (_s, id) => enqueued.push(id),
        onSkipped: (_s, n) => (skipped.count += n),
      });
      return { t, enqueued, skipped };
    }
    const hourly = (catchUp: ScheduleConfig["catchUp"], name = `h-${catchUp}`): ScheduleConfig =>
      ({ name, type: "report", cron: "0 * * * *", timezone: "UTC", payload: '{"n":1}', catchUp });
    const H = 3_600_000;
    const T = Date.parse("2026-06-01T00:30:00Z");

    test("each tick is enqueued once as time passes; after a downtime, catch_up decides what the missed ticks get", async () => {
      const { store } = await freshStore();
      const clock = { now: T };
      const schedules = [hourly("none"), hourly("last"), hourly("all")];
      const first = ticker(store, schedules, clock);
      await first.t.start(); // a schedule never run before starts with its next tick: nothing yet
      expect(first.enqueued).toEqual([]);
      clock.now = T + H / 2; // 01:00
      await first.t.runDue(clock.now);
      expect(first.enqueued).toHaveLength(3);
      await first.t.runDue(clock.now + 1000); // the same tick again: nothing
      expect(first.enqueued).toHaveLength(3);
      first.t.stop();
      // Down from 01:00 to 06:10: ticks 02:00-06:00 (5) were missed.
      clock.now = T + 5 * H + H / 2 + 10 * 60_000;
      const second = ticker(store, schedules, clock);
      await second.t.start();
      const byName = new Map((await store.scheduleStates()).map((s) => [s.name, s]));
      expect(second.enqueued).toHaveLength(0 + 1 + 5);
      expect(second.skipped.count).toBe(5 + 4 + 0);
      const six = Date.parse("2026-06-01T06:00:00Z");
      expect(byName.get("h-none")!.lastTick).toBe(Date.parse("2026-06-01T01:00:00Z"));
      expect(byName.get("h-last")!.lastTick).toBe(six);
      expect(byName.get("h-all")!.lastTick).toBe(six);
      // catch_up "none" picks up again with the next tick.
      clock.now = Date.parse("2026-06-01T07:00:00Z");
      await second.t.runDue(clock.now);
      expect((await store.scheduleStates()).find((s) => s.name === "h-none")!.lastTick).toBe(clock.now);
      const views = await second.t.list();
      expect(views.find((v) => v.name === "h-all")).toMatchObject({ nextTick: Date.parse("2026-06-01T08:00:00Z"), lastTick: clock.now });
      second.t.stop();
    });

    test("catch_up all enqueues at most the latest 100 missed ticks", async () => {
      const { store } = await freshStore();
      const clock = { now: T };
      const s = [{ ...hourly("all"), cron: "* * * * *" }];
      const a = ticker(store, s, clock);
      await a.t.start();
      clock.now = T + 60_000; // 00:31, enqueued
      await a.t.runDue(clock.now);
      expect(a.enqueued).toHaveLength(1);
      a.t.stop();
      clock.now = T + 3 * H; // 03:30: 00:32 to 03:30 missed, 179 ticks
      const b = ticker(store, s, clock);
      await b.t.start();
      expect(b.enqueued).toHaveLength(100);
      expect(b.skipped.count).toBe(179 - 100);
      b.t.stop();
    });

    test("two nodes offering the same ticks enqueue each once", async () => {
      const { store, site } = await freshStore();
      // The second node has a store of its own on the same database (PostgreSQL) or the same one (the embedded store is one process's).
      const other = kind === "postgres" ? site.open() : store;
      if (other !== store) stores.push(other);
      const clock = { now: T };
      const s = [{ ...hourly("last", "shared"), cron: "*/5 * * * *" }];
      const a = ticker(store, s, clock);
      const b = ticker(other, s, clock);
      await Promise.all([a.t.start(), b.t.start()]);
      for (let minute = 1; minute <= 30; minute++) {
        clock.now = T + minute * 60_000;
        await Promise.all([a.t.runDue(clock.now), b.t.runDue(clock.now)]);
      }
      expect(a.enqueued.length + b.enqueued.length).toBe(6);
      expect(new Set([...a.enqueued, ...b.enqueued]).size).toBe(6);
      a.t.stop();
      b.t.stop();
    });
  });

  describe(`GET /schedules on ${kind}`, () => {
    test("shows each schedule's next and last tick and the last tick's job", async () => {
      const site = await storeSite(kind);
      const store = site.open();
      const every: ScheduleConfig = { name: "tick", type: "report", everyMs: 1000, timezone: "UTC", payload: "{}", catchUp: "last" };
      const nightly: ScheduleConfig = { name: "nightly", type: "report", cron: "0 3 * * *", timezone: "Europe/Berlin", payload: "{}", catchUp: "none" };
      const q = await startQueue(store, { report: () => {} }, { schedules: [every, nightly] });
      try {
        const got = await waitFor(async () => {
          const r = await call(q, "GET", "/schedules");
          return r.body.schedules.find((s: { name: string; lastJob: unknown }) => s.name === "tick" && s.lastJob !== null) ? r : null;
        }, { what: "the first tick" });
        const tick = got.body.schedules.find((s: { name: string }) => s.name === "tick");
        expect(tick).toMatchObject({ type: "report", cron: null, everyMs: 1000, timezone: "UTC", catchUp: "last" });
        expect(Date.parse(tick.nextTick)).toBeGreaterThan(Date.parse(tick.lastTick));
        expect(["pending", "inflight", "gone"]).toContain(tick.lastJob.state);
        const n = got.body.schedules.find((s: { name: string }) => s.name === "nightly");
        expect(n).toMatchObject({ cron: "0 3 * * *", everyMs: null, timezone: "Europe/Berlin", lastTick: null, lastJob: null });
        expect(new Date(n.nextTick).toLocaleString("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit" })).toBe("03:00");
      } finally {
        await q.shutdown(0);
        await site.drop();
      }
    });
  });
}
