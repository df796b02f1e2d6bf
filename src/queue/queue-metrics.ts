// queue-metrics.ts: the metrics one queue node exposes on /metrics: what its parts count (submits,
// outcomes, recoveries, adoptions, fenced moves, wait and run times) and the gauges read from its
// heaps and pool at scrape time. Names, help texts and labels live here; the registry is metrics/.
import type { Clock } from "../clock.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { createMetrics, LATENCY_BUCKETS_SECONDS } from "../metrics/registry.ts";
import type { WorkerEvents } from "../pool/pool.ts";
import type { FlowStatus } from "../pool/pushback.ts";
import { RateWindow } from "./rate-window.ts";

/** What the gauges read at scrape time. */
export interface GaugeSources {
  readyCount(): number;
  scheduledCount(): number;
  oldestReadyAt(): number | null;
  inflight(): number;
  busy(): number;
  /** Jobs claimed ahead that wait on this node for a worker slot. */
  waitingForSlot(): number;
  workers: number;
  liveNodes(): number;
  /** The configured job types (each has its pushback series from the start). */
  types(): readonly string[];
  /** What pushback from a type's target allows now. */
  flowStatus(type: string): FlowStatus;
  /** The types file in force: its SHA-256 and when it was loaded (epoch ms), or null without one. */
  config(): { hash: string; loadedAt: number } | null;
  /** Pull types: the polls waiting for their jobs here, and their jobs out to remote workers from here. */
  pullTypes(): readonly string[];
  pollsWaiting(type: string): number;
  pulledOut(type: string): number;
}

/** Ready jobs up to which jobqueue_oldest_ready_age_seconds looks at every one on each read. */
export const OLDEST_SCAN_EXACT_BELOW = 10_000;
/** Beyond that, how often (ms) at most it looks again. */
export const OLDEST_SCAN_EVERY_MS = 1000;

/** jobqueue_breaker_state's values. */
const BREAKER_STATE = { closed: 0, open: 1, half_open: 2 } as const;

export function createQueueMetrics(deps: { clock: Clock; logger: Logger }) {
  const { clock } = deps;
  const metrics = createMetrics({ onReadError: (name, err) => deps.logger.warn("gauge read failed", { name, err: errorMessage(err) }) });
  const m = {
    submitted: metrics.counter("jobqueue_jobs_submitted_total", "Jobs committed by submit.", ["type"]),
    completed: metrics.counter("jobqueue_jobs_completed_total", "Jobs completed successfully.", ["type"]),
    failed: metrics.counter("jobqueue_jobs_failed_total", "Failed attempts (errors and timeouts).", ["type"]),
    retried: metrics.counter("jobqueue_jobs_retried_total", "Failed attempts scheduled to run again.", ["type"]),
    dead: metrics.counter("jobqueue_jobs_dead_total", "Jobs moved to the dead-letter table.", ["type"]),
    recovered: metrics.counter("jobqueue_jobs_recovered_total", "Jobs handed back to pending after an expired lease or a restart.", ["reason"]),
    pulled: metrics.counter("jobqueue_jobs_pulled_total", "Jobs an idle node claimed straight from the store (another node's backlog, or rows its heap missed)."),
    adopted: metrics.counter("jobqueue_jobs_adopted_total", "Due jobs this node took into its heap from the store because they were more urgent than all of its own."),
    bornLeased: metrics.counter("jobqueue_jobs_born_leased_total", "Jobs a submit inserted already leased to this node, to start without a claim (a worker was free, or room to claim ahead, and nothing more urgent was ready)."),
    scheduleTicks: metrics.counter("jobqueue_schedule_ticks_total", "Recurring schedules' ticks: enqueued by this node, or skipped (missed, passed over by catch_up).", ["schedule", "outcome"]),
    held: metrics.counter("jobqueue_flow_held_total", "Claims of due jobs that flow control held back (the job stays pending, no attempt used), by why: paused, rate_limit (also rated jobs claimed ahead that waited past 100 ms for a worker), key_concurrency.", ["type", "reason"]),
    expired: metrics.counter("jobqueue_jobs_expired_total", "Jobs dead-lettered because no attempt could start before their deadline (expiresAt, ttlMs).", ["type"]),
    throttled: metrics.counter("jobqueue_throttled_total", "Attempts whose target pushed back (429/503 with Retry-After): the job waits without using the attempt.", ["type"]),
    throttleDelay: metrics.counter("jobqueue_throttle_delay_seconds_total", "Seconds jobs were told to wait by their targets (after the backoff cap).", ["type"]),
    reloads: metrics.counter("jobqueue_config_reloads_total", "Reloads of the types file (SIGHUP): ok, or failed (the running configuration stayed).", ["outcome"]),
    fenced: metrics.counter("jobqueue_fenced_moves_total", "Moves that found their claim already gone (reaped or superseded).", ["move"]),
    wait: metrics.histogram("jobqueue_job_wait_seconds", "Time from ready to start.", LATENCY_BUCKETS_SECONDS, ["type"]),
    run: metrics.histogram("jobqueue_job_run_seconds", "Handler run time per attempt.", LATENCY_BUCKETS_SECONDS, ["type"]),
  };
  /** Completions in the last minute (GET /stats). */
  const completions = new RateWindow(60);
  /** Jobs started and their waits from ready to start, in total (GET /stats/history takes the mean of each step). */
  const waits = { started: 0, totalMs: 0 };

  /** What the worker pool reports, counted. */
  const poolEvents: WorkerEvents = {
    started: (type, waitMs) => {
      m.wait.labels({ type }).observe(waitMs / 1000);
      waits.started++;
      waits.totalMs += waitMs;
    },
    completed: (type, runMs) => {
      m.completed.labels({ type }).inc();
      completions.add(clock());
      m.run.labels({ type }).observe(runMs / 1000);
    },
    failed: (type, runMs, next) => {
      m.failed.labels({ type }).inc();
      m.run.labels({ type }).observe(runMs / 1000);
      (next === "dead" ? m.dead : m.retried).labels({ type }).inc();
    },
    throttled: (type, runMs, delayMs) => {
      m.throttled.labels({ type }).inc();
      m.throttleDelay.labels({ type }).inc(delayMs / 1000);
      m.run.labels({ type }).observe(runMs / 1000);
    },
    fenced: (move) => m.fenced.labels({ move }).inc(),
    pulled: (count) => m.pulled.inc({}, count),
    adopted: (count) => m.adopted.inc({}, count),
    bornLeased: (count) => m.bornLeased.inc({}, count),
    held: (type, reason) => m.held.labels({ type, reason }).inc(),
    expired: (type, count) => m.expired.labels({ type }).inc(count),
  };

  /** Registers the gauges, read from `src` at every scrape. */
  function gauges(src: GaugeSources): void {
    metrics.gauge("jobqueue_breaker_state", "The breaker toward each type's target on this node: 0 closed, 1 open, 2 half-open (one probe).",
      () => src.types().map((type) => ({ labels: { type }, value: BREAKER_STATE[src.flowStatus(type).breaker] })));
    metrics.gauge("jobqueue_effective_concurrency", "Most jobs of each type this node runs at once now (lowered while its target pushes back).",
      () => src.types().map((type) => ({ labels: { type }, value: src.flowStatus(type).effectiveConcurrency })));
    metrics.gauge("jobqueue_config_info", "The types file in force on this node, by its SHA-256 (value 1).",
      () => {
        const c = src.config();
        return c === null ? [] : [{ labels: { hash: c.hash }, value: 1 }];
      });
    metrics.gauge("jobqueue_config_loaded_timestamp_seconds", "When the types file in force was loaded (start-up or the last good reload).",
      () => {
        const c = src.config();
        return c === null ? [] : c.loadedAt / 1000;
      });
    metrics.gauge("jobqueue_pull_polls_waiting", "Pull workers' polls (POST /claim) waiting on this node, by type asked for.",
      () => src.pullTypes().map((type) => ({ labels: { type }, value: src.pollsWaiting(type) })));
    metrics.gauge("jobqueue_pull_jobs_out", "Jobs of pull types this node handed to remote workers that have not ended yet.",
      () => src.pullTypes().map((type) => ({ labels: { type }, value: src.pulledOut(type) })));
    metrics.gauge("jobqueue_jobs_ready", "Jobs due and waiting for a worker (this node's heap).", src.readyCount);
    metrics.gauge("jobqueue_jobs_scheduled", "Jobs waiting for their run time (this node's heap).", src.scheduledCount);
    metrics.gauge("jobqueue_jobs_inflight", "Jobs claimed by this node and not yet settled.", src.inflight);
    metrics.gauge("jobqueue_nodes", "Processes sharing this database whose heartbeat is recent (this one included).", src.liveNodes);
    metrics.gauge("jobqueue_workers_busy", "Worker slots running a handler.", src.busy);
    metrics.gauge("jobqueue_jobs_claimed_ahead", "Jobs claimed ahead of a free worker slot (--claim-ahead-ms), waiting on this node for one.", src.waitingForSlot);
    metrics.gauge("jobqueue_workers", "Worker slots in the pool.", () => src.workers);
    // Finding the oldest ready job visits every heap entry: with many ready, at most one visit per
    // OLDEST_SCAN_EVERY_MS, however often /metrics is read (a million entries take milliseconds
    // of the event loop). Until the next visit the age grows from the last one's finding.
    let scan = { at: -Infinity, oldest: null as number | null };
    metrics.gauge("jobqueue_oldest_ready_age_seconds", `Age of the longest-waiting ready job (with more than ${OLDEST_SCAN_EXACT_BELOW} ready, as found at most ${OLDEST_SCAN_EVERY_MS} ms ago).`, () => {
      const now = clock();
      if (src.readyCount() <= OLDEST_SCAN_EXACT_BELOW || now - scan.at >= OLDEST_SCAN_EVERY_MS) scan = { at: now, oldest: src.oldestReadyAt() };
      return scan.oldest === null ? 0 : Math.max(0, now - scan.oldest) / 1000;
    });
  }

  /**
   * Every configured type's per-type series exist from the start, at 0, so rate() of a quiet type
   * is 0, not empty (the per-reason holds appear with their first hold).
   */
  function typesConfigured(types: readonly string[]): void {
    for (const type of types) {
      for (const counter of [m.submitted, m.completed, m.failed, m.retried, m.dead, m.expired, m.throttled, m.throttleDelay]) counter.labels({ type });
    }
  }

  return { metrics, counters: m, completions, waits, poolEvents, gauges, typesConfigured };
}
