// stats-history.ts: the last minutes of this node's activity, one sample a step (submits,
// completions, failures and dead letters in the step, the heap's depth and the mean wait), kept in
// a fixed ring so GET /stats/history can fill a dashboard's charts the moment it opens. Bounded
// memory, no allocation per sample; reads totals it is given, knows no HTTP and no store.
import type { Clock } from "../clock.ts";

/** What the sampler reads at each tick: totals since the process started, and levels now. */
export interface HistoryReading {
  submitted: number;
  completed: number;
  /** Failed attempts (errors and timeouts). */
  failed: number;
  /** Jobs moved to the dead letters (failures and expiries). */
  dead: number;
  /** Jobs started, and the sum of their waits from ready to start (ms). */
  started: number;
  waitMs: number;
  /** Levels: due jobs waiting in this node's heap, jobs waiting for their time, jobs this node runs. */
  ready: number;
  scheduled: number;
  running: number;
}

/** The series a sample holds: per-step increases of the totals, levels as read, and the mean wait. */
export const HISTORY_SERIES = ["submitted", "completed", "failed", "dead", "ready", "scheduled", "running", "waitMs"] as const;
export type HistorySeries = (typeof HISTORY_SERIES)[number];

/**
 * The ring as a reader sees it: sample i was taken at `start + i × stepMs` and counts the events of
 * the step before it; levels are as they were then; waitMs is the mean wait of the jobs that started
 * in the step (null when none did). A step without a sample (the process was too busy to take one)
 * is null in every series. Oldest first; `start` is null before the first sample.
 */
export interface HistoryView {
  stepMs: number;
  start: number | null;
  series: Record<HistorySeries, (number | null)[]>;
}

/** The hot data structure: one typed array per series, indexed by step modulo the capacity. */
export class HistoryRing {
  private readonly steps: Float64Array;
  private readonly values: Record<HistorySeries, Float64Array>;

  constructor(readonly capacity: number) {
    this.steps = new Float64Array(capacity).fill(-1);
    this.values = Object.fromEntries(HISTORY_SERIES.map((s) => [s, new Float64Array(capacity)])) as Record<HistorySeries, Float64Array>;
  }

  /** Keep `sample` as step `step` (NaN for a null), replacing whatever the slot held `capacity` steps ago. */
  put(step: number, sample: Record<HistorySeries, number>): void {
    const i = step % this.capacity;
    this.steps[i] = step;
    for (const s of HISTORY_SERIES) this.values[s][i] = sample[s];
  }

  /** The last `capacity` steps up to `step`, from the first one that holds a sample. */
  read(step: number, stepMs: number): HistoryView {
    const series = Object.fromEntries(HISTORY_SERIES.map((s) => [s, [] as (number | null)[]])) as HistoryView["series"];
    let start: number | null = null;
    for (let at = step - this.capacity + 1; at <= step; at++) {
      const i = ((at % this.capacity) + this.capacity) % this.capacity;
      const held = at >= 0 && this.steps[i] === at;
      if (start === null && !held) continue;
      start ??= at * stepMs;
      for (const s of HISTORY_SERIES) {
        const v = held ? this.values[s][i]! : NaN;
        series[s].push(Number.isNaN(v) ? null : v);
      }
    }
    return { stepMs, start, series };
  }
}

export interface StatsHistoryDeps {
  clock: Clock;
  read: () => HistoryReading;
  /** One sample per step (default 1 s). */
  stepMs?: number;
  /** Samples kept (default 900: 15 minutes of 1 s steps). */
  capacity?: number;
}

export interface StatsHistory {
  /** Take one sample at `now`: what the totals grew by since the last one. The first tick only sets the baseline. */
  tick(now: number): { sampled: boolean };
  /** Samples every step from now on, on a timer that never keeps the process alive. */
  start(): void;
  /** Stops sampling (a tick never outlives its synchronous call); the samples stay readable. */
  stop(): void;
  /** The samples of the last `capacity` steps up to `now` (and up to the last sample taken). */
  view(now: number): HistoryView;
}

export const HISTORY_STEP_MS = 1000;
export const HISTORY_CAPACITY = 900;

export function createStatsHistory(deps: StatsHistoryDeps): StatsHistory {
  const stepMs = deps.stepMs ?? HISTORY_STEP_MS;
  const ring = new HistoryRing(deps.capacity ?? HISTORY_CAPACITY);
  let last: { step: number; reading: HistoryReading } | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;

  function tick(now: number): { sampled: boolean } {
    const step = Math.floor(now / stepMs);
    const reading = deps.read();
    // A second tick within one step waits for the next: its events go into that step's sample.
    if (last !== null && step <= last.step) return { sampled: false };
    const before = last?.reading;
    last = { step, reading };
    if (before === undefined) return { sampled: false };
    const grew = (k: "submitted" | "completed" | "failed" | "dead") => Math.max(0, reading[k] - before[k]);
    const started = reading.started - before.started;
    ring.put(step, {
      submitted: grew("submitted"), completed: grew("completed"), failed: grew("failed"), dead: grew("dead"),
      ready: reading.ready, scheduled: reading.scheduled, running: reading.running,
      waitMs: started > 0 ? Math.round(((reading.waitMs - before.waitMs) / started) * 1000) / 1000 : NaN,
    });
    return { sampled: true };
  }

  return {
    tick,
    start() {
      if (timer !== undefined) return;
      tick(deps.clock());
      timer = setInterval(() => tick(deps.clock()), stepMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
    // Up to the last sample: the step under way has none yet, and is not shown as a gap.
    view: (now) => ring.read(Math.min(Math.floor(now / stepMs), last?.step ?? Infinity), stepMs),
  };
}
