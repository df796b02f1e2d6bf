// schedules.ts: recurring jobs. Each node computes every schedule's ticks (croner for cron
// expressions, in the schedule's time zone; multiples of the interval since the epoch for `every`)
// and offers each due tick to the store, which enqueues it only if no node did before
// (store.enqueueTick), so a tick runs once across nodes and restarts. Ticks missed while no node
// ran follow the schedule's catch_up. Knows nothing of HTTP; the store decides who enqueues.
import { Cron } from "croner";
import type { Clock } from "../clock.ts";
import { MAX_CATCH_UP, type ScheduleConfig } from "../config/schedules.ts";
import { errorMessage } from "../errors.ts";
import type { HandlerRegistry } from "../handlers/handler.ts";
import type { Logger } from "../logger.ts";
import type { NewJob } from "../store/rows.ts";
import type { Schedules } from "../store/store.ts";

/** After a failed offer (the store unreachable), try the schedule again this much later. */
const RETRY_MS = 1000;
/** setTimeout's ceiling; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Missed ticks looked at (and counted as skipped) in one pass at most. */
const MAX_COUNTED = 10_000;

/** One schedule's tick arithmetic: the next tick after a moment, and the latest ticks up to one. */
export interface TickRule {
  /** The first tick strictly after `after` (ms), or null when there is none. */
  next(after: number): number | null;
  /** Up to `n` latest ticks in (after, upTo], oldest first. */
  latest(after: number, upTo: number, n: number): number[];
  /** How many ticks lie in (after, upTo], counting at most `max`. */
  count(after: number, upTo: number, max: number): number;
}

export function tickRule(s: Pick<ScheduleConfig, "cron" | "everyMs" | "timezone">): TickRule {
  if (s.everyMs !== undefined) {
    const every = s.everyMs;
    return {
      next: (after) => (Math.floor(after / every) + 1) * every,
      count: (after, upTo, max) => Math.max(0, Math.min(max, Math.floor(upTo / every) - Math.floor(after / every))),
      latest(after, upTo, n) {
        const out: number[] = [];
        for (let t = Math.floor(upTo / every) * every; t > after && out.length < n; t -= every) out.push(t);
        return out.reverse();
      },
    };
  }
  const cron = new Cron(s.cron!, { timezone: s.timezone, paused: true });
  return {
    next(after) {
      return cron.nextRun(new Date(after))?.getTime() ?? null;
    },
    latest(after, upTo, n) {
      // previousRuns counts back from a reference it excludes: one ms past upTo includes upTo itself.
      return cron.previousRuns(n, new Date(upTo + 1)).map((d) => d.getTime()).filter((t) => t > after).sort((a, b) => a - b);
    },
    count(after, upTo, max) {
      // Forward from the last tick: one or two steps in the usual case; a long outage stops at max.
      let n = 0;
      for (let t = cron.nextRun(new Date(after)); t !== null && t.getTime() <= upTo && n < max; t = cron.nextRun(t)) n++;
      return n;
    },
  };
}

export interface ScheduleView {
  name: string;
  type: string;
  cron: string | null;
  everyMs: number | null;
  timezone: string;
  catchUp: ScheduleConfig["catchUp"];
  /** The next tick this node will offer (ms), or null. */
  nextTick: number | null;
  /** The last tick enqueued by any node (ms), and its job, or null before the first. */
  lastTick: number | null;
  lastJobId: number | null;
}

export interface SchedulerOfTicksDeps {
  store: Pick<Schedules, "enqueueTick" | "scheduleStates">;
  schedules: readonly ScheduleConfig[];
  registry: Pick<HandlerRegistry, "get">;
  clock: Clock;
  logger: Logger;
  /** A tick's job was enqueued by this node: put it in the heap. */
  onEnqueued: (s: ScheduleConfig, id: number, job: NewJob, now: number) => void;
  /** Ticks passed over (catch_up), counted. */
  onSkipped: (s: ScheduleConfig, count: number) => void;
}

interface Ticking {
  config: ScheduleConfig;
  rule: TickRule;
  /** The latest tick known handled (enqueued here or elsewhere, or skipped). */
  last: number;
  /** The next tick this node will offer, or null (for GET /schedules). */
  next: number | null;
  /** Not before this moment (after a failed offer). */
  notBefore: number;
}

export function createScheduleTicker(deps: SchedulerOfTicksDeps) {
  const { store, clock, logger } = deps;
  const ticking = new Map<string, Ticking>();
  /** The schedules in force (a reload of the types file replaces them). */
  let schedules = deps.schedules;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  /** One pass at a time. */
  let pass: Promise<void> = Promise.resolve();

  /** A tick's job: due at the tick (GET /jobs/:id shows which tick made it), so a late one has waited, for aging, since then. */
  function jobOf(s: ScheduleConfig, tick: number): NewJob {
    const policy = deps.registry.get(s.type);
    return {
      type: s.type, payload: s.payload, priority: s.priority ?? policy?.priority ?? 0, maxAttempts: policy?.maxAttempts ?? 5,
      runAt: tick, timeoutMs: null, ...(s.key !== undefined && { key: s.key }),
    };
  }

  /**
   * Offer the due ticks of one schedule: those after the last handled, up to `now`. One due tick is
   * simply offered (a timer's lateness is not a miss). Several mean ticks were missed (no node ran,
   * or this one stalled): catch_up "all" offers the latest MAX_CATCH_UP of them in order, "last"
   * only the latest, and "none" none of those missed while the node was down (at start) and only
   * the latest otherwise. The rest are counted as skipped.
   */
  async function offer(t: Ticking, now: number, atStart: boolean): Promise<void> {
    if (t.notBefore > now) return;
    const dueCount = t.rule.count(t.last, now, MAX_COUNTED);
    if (dueCount === 0) {
      t.next = t.rule.next(Math.max(t.last, now));
      return;
    }
    const keep = dueCount === 1 && !(atStart && t.config.catchUp === "none") ? 1
      : t.config.catchUp === "all" ? MAX_CATCH_UP
      : t.config.catchUp === "last" || !atStart ? 1
      : 0;
    const offered = keep === 0 ? [] : t.rule.latest(t.last, now, keep);
    const latestDue = keep === 0 ? t.rule.latest(t.last, now, 1)[0]! : offered[offered.length - 1]!;
    if (dueCount > offered.length) deps.onSkipped(t.config, dueCount - offered.length);
    for (const tick of offered) {
      try {
        const job = jobOf(t.config, tick);
        const id = await store.enqueueTick(t.config.name, tick, job, now);
        if (id !== null) deps.onEnqueued(t.config, id, job, now);
      } catch (err) {
        logger.warn("could not enqueue a schedule's tick; trying again", { schedule: t.config.name, tick: new Date(tick).toISOString(), err: errorMessage(err) });
        t.notBefore = now + RETRY_MS;
        return;
      }
      t.last = tick;
    }
    t.last = latestDue;
    t.next = t.rule.next(Math.max(t.last, now));
  }

  function arm(): void {
    if (!running) return;
    if (timer) clearTimeout(timer);
    let at = Infinity;
    for (const t of ticking.values()) if (t.next !== null) at = Math.min(at, Math.max(t.next, t.notBefore));
    timer = at === Infinity ? null : setTimeout(() => void runDue(clock()), Math.min(MAX_TIMER_MS, Math.max(0, at - clock())));
  }

  /** Offer every schedule's due ticks as of `now` (the timer calls it; tests call it with a controlled clock). */
  function runDue(now: number, atStart = false): Promise<void> {
    pass = pass.then(async () => {
      for (const t of ticking.values()) await offer(t, now, atStart);
      arm();
    });
    return pass;
  }

  return {
    /**
     * Read where every schedule stands and offer what is due: ticks missed since the last enqueued
     * one follow catch_up; a schedule never enqueued before starts with its next tick.
     */
    async start(): Promise<void> {
      running = true; // with none yet, a reload may bring some
      if (schedules.length === 0) return;
      const states = new Map((await store.scheduleStates()).map((s) => [s.name, s]));
      const now = clock();
      for (const config of schedules) {
        const rule = tickRule(config);
        const last = states.get(config.name)?.lastTick;
        ticking.set(config.name, {
          config, rule, notBefore: 0,
          last: last ?? now,
          next: last === undefined ? rule.next(now) : rule.next(last),
        });
      }
      await runDue(now, true);
    },
    runDue,
    /**
     * The types file was read again: these schedules from now on. Each one takes up where the store
     * says it stands (the last tick any node enqueued), as at a start, so none is enqueued twice.
     */
    async replace(next: readonly ScheduleConfig[]): Promise<void> {
      const wasRunning = running;
      this.stop();
      await pass;
      ticking.clear();
      schedules = next;
      if (wasRunning) await this.start();
    },
    stop(): void {
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
    },
    /** Every schedule with its next tick here and its last tick anywhere. */
    async list(): Promise<ScheduleView[]> {
      const states = new Map((await store.scheduleStates()).map((s) => [s.name, s]));
      return schedules.map((c) => {
        const t = ticking.get(c.name);
        const st = states.get(c.name);
        return {
          name: c.name, type: c.type, cron: c.cron ?? null, everyMs: c.everyMs ?? null, timezone: c.timezone, catchUp: c.catchUp,
          nextTick: t?.next ?? null, lastTick: st?.lastTick ?? null, lastJobId: st?.lastJobId ?? null,
        };
      });
    },
  };
}

export type ScheduleTicker = ReturnType<typeof createScheduleTicker>;
