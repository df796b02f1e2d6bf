// jobqueue.ts: wires one queue node from its parts (store, scheduler, dispatcher, worker pool,
// reaper, operator services, metrics) and owns its start-up and shutdown order. It offers front ends
// a QueueApi and knows no HTTP; it opens no port and reads no environment: main.ts, server.ts and
// library users hand it real resources and resolved settings.
import { createScheduleTicker, type ScheduleTicker } from "./schedules.ts";
import type { ScheduleConfig } from "../config/schedules.ts";
import type { BackoffPolicy } from "./backoff.ts";
import type { Clock } from "../clock.ts";
import type { QueueApi } from "./api.ts";
import { createBackups } from "../ops/backup.ts";
import { createCancellation } from "../ops/cancellation.ts";
import { createDeadLetters } from "../ops/dead-letters.ts";
import { createJobTypes } from "../ops/job-types.ts";
import { createDispatcher } from "./dispatcher.ts";
import { NodeIdInUseError, badRequest, errorMessage } from "../errors.ts";
import type { HandlerRegistry } from "../handlers/handler.ts";
import { createLogger, type Logger } from "../logger.ts";
import type { Metrics } from "../metrics/registry.ts";
import { createQueueMetrics } from "./queue-metrics.ts";
import { createReaper } from "./reaper.ts";
import { createScheduler, type Scheduler } from "./scheduler.ts";
import { createStats } from "../ops/stats.ts";
import { createStatsHistory } from "./stats-history.ts";
import type { Store } from "../store/store.ts";
import type { JobView, NewJob, PendingEntry } from "../store/rows.ts";
import { createWorkerPool, type WorkerPool } from "../pool/pool.ts";

/**
 * How a node runs, every value resolved: the option table (config/options.ts) states the defaults
 * once, and config/config.ts's queueSettings() turns a Config into these.
 */
export interface QueueSettings {
  /** Names this process in leases; held by one live process; a restart with it recovers its orphans at once. */
  nodeId: string;
  /** Jobs run at once. */
  workers: number;
  /** Claim beyond the free workers as many jobs as they run in this long (0: never); see pool.ts. */
  claimAheadMs?: number;
  leaseMs: number;
  /** Waiting this long is worth one priority level (0: first ready runs first). */
  agingMs: number;
  reapIntervalMs: number;
  backoff: BackoffPolicy;
  /** Most bytes of submits waiting for their commit; beyond it, 503 overloaded (0 = no limit). */
  maxPendingBytes: number;
  /** Keep a small record of each completed job this long (GET /jobs/:id answers "completed"); 0 = none. */
  keepCompletedMs: number;
  /** LISTEN for other nodes' new-job hints (PostgreSQL); false behind PgBouncer transaction pooling. */
  listen: boolean;
}

export interface JobQueueOptions extends QueueSettings {
  store: Store;
  registry: HandlerRegistry;
  /** Default: the store's clock (on PostgreSQL the database server's). */
  clock?: Clock;
  /**
   * Called when the node can no longer run safely (another process took its node id while its
   * database session was lost); the caller should stop it. Default: log the error.
   */
  onFatal?: (err: Error) => void;
  /** Randomness for backoff jitter (tests pass a fixed one). */
  random?: () => number;
  logger?: Logger;
  /** Recurring schedules (the types file's [schedules]); each tick is enqueued once across nodes. */
  schedules?: readonly ScheduleConfig[];
  /** The SHA-256 of the types file the registry came from (GET /metrics jobqueue_config_info). */
  configHash?: string;
}

export interface JobQueue {
  /** What front ends may ask of it (the HTTP app is built on this: http/app.ts createApp). */
  readonly api: QueueApi;
  readonly metrics: Metrics;
  readonly scheduler: Scheduler;
  readonly pool: WorkerPool;
  readonly ticker: ScheduleTicker;
  /** Migrate, recover this node's orphans, load the heaps, start workers and the reaper. */
  start(): Promise<void>;
  /** Commit jobs; resolves with their ids after the commit (a duplicate's: the id of the job holding its key). */
  submit(jobs: NewJob[]): Promise<number[]>;
  /**
   * A reloaded types file: `registry`'s types replace the running ones (new starts follow them; running
   * attempts keep what they had; jobs of a dropped type wait until it returns), and its schedules
   * replace the running ones.
   */
  reloadTypes(registry: HandlerRegistry, schedules: readonly ScheduleConfig[], hash?: string): Promise<void>;
  /** A reload of the types file failed: counted (the running configuration stays). */
  reloadFailed(): void;
  /** Graceful stop: refuse submits, finish or hand back running jobs, close the store. */
  shutdown(graceMs: number): Promise<{ finished: number; released: number }>;
  readonly state: "new" | "starting" | "running" | "stopping" | "stopped";
}

/**
 * What the HTTP layer checks of a submitted job that a library caller could still get wrong: the
 * payload is stored and delivered as it is, so it must be JSON text, and an idempotency key must be
 * well-formed (a lone surrogate would reach the store as U+FFFD and merge different keys).
 */
function checkLibraryJob(job: NewJob, i: number): void {
  try {
    JSON.parse(job.payload);
  } catch {
    throw badRequest(`jobs[${i}].payload: is not JSON text`, "invalid_request");
  }
  if (job.idempotencyKey !== undefined && !job.idempotencyKey.isWellFormed()) {
    throw badRequest(`jobs[${i}].idempotencyKey: contains a lone UTF-16 surrogate`, "invalid_request");
  }
}

/** Rows per batch when streaming pending jobs into the heaps at start-up. */
const LOAD_BATCH = 10_000;
/** Pending rows at start-up past which the loader's garbage is collected before serving. */
const LARGE_LOAD = 100_000;
/** How long /ready waits for the store before calling it unreachable. */
const READY_PING_TIMEOUT_MS = 2000;

export function createJobQueue(opts: JobQueueOptions): JobQueue {
  // The store's clock: on PostgreSQL the server's, so due times and leases agree across nodes.
  const clock = opts.clock ?? opts.store.clock;
  const logger = opts.logger ?? createLogger("info");
  const { leaseMs, reapIntervalMs } = opts;
  const { store, registry } = opts;
  let state: JobQueue["state"] = "new";
  let config = opts.configHash === undefined ? null : { hash: opts.configHash, loadedAt: Date.now() };

  const { metrics, counters: m, completions, waits, poolEvents, gauges, typesConfigured } = createQueueMetrics({ clock, logger });
  const scheduler = createScheduler({ agingMs: opts.agingMs, clock, onReady: () => pool.pump() });
  const pushEntries = (entries: PendingEntry[]) => {
    const now = clock();
    for (const e of entries) scheduler.add(e.id, e.priority, e.runAt, now, e.type, e.key);
  };

  const dispatcher = createDispatcher({
    store, scheduler, clock, logger,
    maxPendingBytes: opts.maxPendingBytes,
    direct: {
      owner: opts.nodeId, leaseMs,
      reserve: (types) => pool.reserve(types),
      startReserved: (jobs) => pool.startReserved(jobs),
      unreserve: (types) => pool.unreserve(types),
    },
    lost: { recheck: (leased) => pool.recheck(leased) },
    onSubmitted: (jobs) => {
      for (const j of jobs) m.submitted.labels({ type: j.type }).inc();
    },
  });

  const ticker = createScheduleTicker({
    store, registry, clock, logger,
    schedules: opts.schedules ?? [],
    onEnqueued: (s, id, job, now) => {
      m.scheduleTicks.labels({ schedule: s.name, outcome: "enqueued" }).inc();
      m.submitted.labels({ type: job.type }).inc();
      scheduler.add(id, job.priority, job.runAt, now, job.type, job.key ?? null);
    },
    onSkipped: (s, count) => m.scheduleTicks.labels({ schedule: s.name, outcome: "skipped" }).inc(count),
  });

  const pool = createWorkerPool({
    store, scheduler, registry, clock, logger, leaseMs,
    agingMs: opts.agingMs,
    keepCompletedMs: opts.keepCompletedMs,
    owner: opts.nodeId,
    concurrency: opts.workers,
    claimAheadMs: opts.claimAheadMs ?? 0,
    backoff: opts.backoff,
    ...(opts.random !== undefined && { random: opts.random }),
    events: poolEvents,
  });

  const jobTypes = createJobTypes({ store, registry, clock, onPaused: (types) => pool.setPaused(types) });
  /** Another node paused or resumed a type: read the paused set again (and, on a resume, look for work). */
  const pausesChanged = () => {
    jobTypes.refresh()
      .then(() => pool.pull())
      .catch((err) => logger.warn("reading the paused job types failed", { err: errorMessage(err) }));
  };

  let liveNodes = 1;
  let stopListening: () => Promise<void> = async () => {};
  const reaper = createReaper({
    store, clock, logger,
    intervalMs: reapIntervalMs,
    keepCompletedMs: opts.keepCompletedMs,
    onRecovered: (entries) => {
      m.recovered.labels({ reason: "lease_expired" }).inc(entries.length);
      pushEntries(entries);
    },
    onExpired: (jobs) => {
      for (const j of jobs) {
        scheduler.remove(j.id);
        m.expired.labels({ type: j.type }).inc();
      }
    },
    afterTick: async () => {
      // The paused types, read again (NOTIFY tells of changes at once; this is the backstop).
      await jobTypes.refresh().catch((err) => logger.warn("reading the paused job types failed", { err: errorMessage(err) }));
      // Work this heap does not hold: more urgent rows than its own (pool.adopt), and, when idle,
      // any due rows (pool.pull; hints make that quicker); then node liveness.
      await pool.adopt().catch((err) => logger.warn("looking for more urgent jobs in the store failed", { err: errorMessage(err) }));
      pool.pull();
      try {
        liveNodes = await store.heartbeatNode(opts.nodeId, clock(), clock() - 3 * reapIntervalMs);
      } catch (err) {
        if (!(err instanceof NodeIdInUseError)) throw err;
        logger.error("this node's id was taken by another process while its database session was lost: stopping", { node: opts.nodeId });
        (opts.onFatal ?? (() => {}))(err);
      }
    },
  });

  gauges({
    readyCount: () => scheduler.readyCount,
    scheduledCount: () => scheduler.scheduledCount,
    oldestReadyAt: () => scheduler.oldestReadyAt(),
    inflight: () => pool.inflight,
    busy: () => pool.busy,
    waitingForSlot: () => pool.waitingForSlot,
    workers: opts.workers,
    liveNodes: () => liveNodes,
    types: () => registry.types(),
    flowStatus: (type) => pool.flowStatus(type),
    config: () => config,
    pullTypes: () => registry.types().filter((t) => registry.get(t)?.pull === true),
    pollsWaiting: (type) => pool.remote.waitingFor(type),
    pulledOut: (type) => pool.remote.out(type),
  });

  // This node's last minutes, second by second, for the dashboard's charts (GET /stats/history).
  const history = createStatsHistory({
    clock,
    read: () => ({
      submitted: m.submitted.get(), completed: m.completed.get(), failed: m.failed.get(), dead: m.dead.get() + m.expired.get(),
      started: waits.started, waitMs: waits.totalMs,
      ready: scheduler.readyCount, scheduled: scheduler.scheduledCount, running: pool.inflight,
    }),
  });

  async function notReadyReason(): Promise<string | null> {
    if (state === "new" || state === "starting") return "recovering: the queue is loading its jobs";
    if (state !== "running") return "shutting down";
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        store.ping(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), READY_PING_TIMEOUT_MS))),
      ]);
      return null;
    } catch (err) {
      return `the job store is unreachable (${errorMessage(err, 200)})`;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A live job with why it waits, as this node sees it (dead and completed jobs wait for nothing). */
  const withWait = (job: JobView): JobView =>
    job.state === "dead" || job.state === "completed" ? job : { ...job, waitingFor: pool.waitingFor(job) };

  const api: QueueApi = {
    submit: (jobs) => dispatcher.submit(jobs),
    admit: (bytes) => dispatcher.admit(bytes),
    typeDefaults: (type) => {
      const t = registry.get(type);
      return t && { priority: t.priority, maxAttempts: t.maxAttempts };
    },
    getJob: async (id) => {
      const job = await store.get(id, clock());
      return job === null ? null : withWait(job);
    },
    listJobs: async (query) => (await store.listJobs(query, clock())).map(withWait),
    dead: createDeadLetters({ store, clock, logger, onRetried: pushEntries }),
    types: jobTypes,
    // Pushback from each type's target on this node (effective concurrency, breaker), beside GET /types' shared numbers.
    flowStatus: (type) => ({ ...pool.flowStatus(type) }),
    remote: pool.remote,
    cancel: createCancellation({ store, pool, nodeId: opts.nodeId, clock, onRemoved: (id) => scheduler.remove(id) }).cancel,
    stats: createStats({ store, clock, completions }).read,
    history: () => history.view(clock()),
    backup: createBackups({ store, clock, logger }).take,
    schedules: async () => {
      const list = await ticker.list();
      return await Promise.all(list.map(async (v) => ({
        ...v,
        lastJobState: v.lastJobId === null ? null : (await store.get(v.lastJobId, clock()))?.state ?? "gone",
      })));
    },
    notReadyReason,
    accepting: () => state === "running" || state === "starting",
    metricsText: () => metrics.render(),
    metricsContentType: metrics.contentType,
    queuedCount: () => scheduler.readyCount + scheduler.scheduledCount,
    clock,
    logger,
  };

  return {
    api, metrics, scheduler, pool, ticker,
    get state() {
      return state;
    },
    async submit(jobs) {
      jobs.forEach(checkLibraryJob);
      return (await dispatcher.submit(jobs)).map((r) => r.id);
    },

    async start() {
      if (state !== "new") throw new Error(`cannot start a queue that is ${state}`);
      state = "starting";
      const t0 = clock();
      typesConfigured(registry.types());
      await store.migrate();
      // Only once the id is ours alone may its rows be taken back: a live holder is still running them.
      await store.holdNodeId(opts.nodeId);
      // The paused types before anything can start: no claim or leased insert starts one of them.
      await jobTypes.refresh();
      const orphans = await store.recoverOwner(opts.nodeId, clock());
      if (orphans.length > 0) {
        m.recovered.labels({ reason: "restart" }).inc(orphans.length);
        logger.info("recovered this node's interrupted jobs", { count: orphans.length });
      }
      let loaded = 0;
      for await (const batch of store.streamPending(LOAD_BATCH)) {
        pushEntries(batch);
        loaded += batch.length;
      }
      // Streaming a large backlog leaves its decoded rows behind as garbage: collect it once now,
      // so the process starts serving at the size of what it keeps (the heaps), not at its peak.
      if (loaded >= LARGE_LOAD) Bun.gc(true);
      liveNodes = await store.heartbeatNode(opts.nodeId, clock(), clock() - 3 * reapIntervalMs);
      if (opts.listen) {
        try {
          stopListening = await store.listen(() => pool.pull(), pausesChanged);
        } catch (err) {
          logger.warn("cannot LISTEN for other nodes' hints; polling instead (use --no-listen to silence)", { err: errorMessage(err) });
        }
      }
      scheduler.start();
      pool.start();
      reaper.start();
      history.start();
      state = "running";
      // After the heaps are loaded and workers run: a tick's job goes into a running node.
      await ticker.start();
      logger.info("queue started", {
        store: store.kind, location: store.location, node: opts.nodeId, loaded,
        ready: scheduler.readyCount, scheduled: scheduler.scheduledCount, ms: clock() - t0,
        types: () => registry.types(),
      });
    },

    async reloadTypes(next, schedules, hash) {
      registry.replaceAll(next);
      typesConfigured(registry.types());
      config = hash === undefined ? null : { hash, loadedAt: Date.now() };
      m.reloads.labels({ outcome: "ok" }).inc();
      if (state === "running") await ticker.replace(schedules);
      // A type added or changed may have jobs waiting here or in the store.
      pool.pump();
      pool.pull();
    },
    reloadFailed() {
      m.reloads.labels({ outcome: "failed" }).inc();
    },

    async shutdown(graceMs) {
      if (state === "stopping" || state === "stopped") return { finished: 0, released: 0 };
      const wasRunning = state === "running";
      state = "stopping";
      logger.info("shutting down", { graceMs, running: pool.busy });
      ticker.stop();
      history.stop();
      await dispatcher.drain();
      scheduler.stop();
      await reaper.stop();
      const result = wasRunning ? await pool.stop(graceMs) : { finished: 0, released: 0 };
      await stopListening().catch(() => {});
      await store.removeNode(opts.nodeId).catch((err) => logger.warn("could not deregister this node", { err: errorMessage(err) }));
      await store.close();
      state = "stopped";
      logger.info("stopped", result);
      return result;
    },
  };
}
