// api-schema.ts: the shapes of the HTTP API besides submit bodies (submit-schema.ts): path ids,
// query strings and every response body, as zod schemas. Routes validate with them and the
// OpenAPI document is generated from them. No routes and no store here.
import { z } from "zod";

export const MAX_JOB_ID = Number.MAX_SAFE_INTEGER;
export const DEAD_PAGE_DEFAULT = 100;
export const DEAD_PAGE_MAX = 500;
/** Payload bytes one page of GET /dead holds at most (plus at most one payload, when a single job is larger). */
export const DEAD_PAGE_MAX_BYTES = 4 * 1024 * 1024;

/** A job id in a path or query: digits, 1 to 2^53 − 1. */
export const idText = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/)
  .transform(Number)
  .refine(Number.isSafeInteger)
  .meta({ description: `a job id: an integer from 1 to ${MAX_JOB_ID}, as decimal digits`, example: "42" });

export const jobIdParam = z.object({ id: idText });

export const typeName = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,100}$/, { error: "expected a job type name (1-100 characters from A-Z a-z 0-9 _ . : -)" });

/**
 * An integer query parameter from `min` to `max`: decimal digits in the query string, decoded to a
 * number. The OpenAPI document shows it as what it decodes to (`type: integer` with these bounds),
 * so a generated client sends a number and the server checks the same bounds it documents.
 */
const queryInt = (min: number, max: number) => {
  const error = `expected an integer from ${min} to ${max}`;
  return z.codec(
    z.string().regex(/^[0-9]{1,16}$/, { error }),
    z.int({ error }).min(min, { error }).max(max, { error }),
    { decode: Number, encode: String },
  );
};

/** The order of a listing by id: oldest first (ascending, the default) or newest first. */
const listOrder = z.enum(["oldest", "newest"]);
/** The cursor of a listing: the previous page's `next`. */
const afterCursor = queryInt(0, MAX_JOB_ID)
  .optional()
  .meta({
    description: "the previous page's `next`: list the jobs past this id in the page's order (ids above it oldest first, below it newest first); absent or 0: the first page",
  });

export const deadListQuery = z.strictObject({
  type: typeName.optional().meta({ description: "only dead jobs of this type" }),
  order: listOrder.optional().meta({ description: "`oldest` (the default): ids ascending; `newest`: ids descending, the most recently submitted first" }),
  after: afterCursor,
  limit: queryInt(1, DEAD_PAGE_MAX)
    .optional()
    .meta({ description: `page size (default ${DEAD_PAGE_DEFAULT})` }),
});

export const JOB_STATES = ["pending", "scheduled", "inflight", "dead", "completed"] as const;
export const JOB_PAGE_DEFAULT = 100;
export const JOB_PAGE_MAX = 500;
/** Payload bytes one page of GET /jobs holds at most (plus at most one payload, when a single job is larger). */
export const JOB_PAGE_MAX_BYTES = DEAD_PAGE_MAX_BYTES;

export const jobListQuery = z.strictObject({
  state: z.enum(JOB_STATES).meta({
    description: "the state to list (required): `pending` (due, waiting for a worker), `scheduled` (waiting for its runAt or a retry backoff), `inflight` (running), `dead`, `completed` (records kept by --keep-completed)",
  }),
  type: typeName.optional().meta({ description: "only jobs of this type" }),
  order: listOrder.optional().meta({ description: "`oldest` (the default): ids ascending; `newest`: ids descending, the most recently submitted first" }),
  after: afterCursor,
  limit: queryInt(1, JOB_PAGE_MAX)
    .optional()
    .meta({ description: `page size (default ${JOB_PAGE_DEFAULT})` }),
});

export const bulkTypeQuery = z.strictObject({
  type: typeName.meta({ description: "the job type to act on (required)" }),
});

// ---- responses --------------------------------------------------------------------------------

const iso = z.iso.datetime().meta({ description: "ISO 8601 UTC date-time" });
const idString = z.string().regex(/^[1-9][0-9]*$/).meta({ description: "a job id (decimal digits)", example: "42" });

export const attemptRecord = z
  .object({
    attempt: z.int().min(0).meta({ description: "the attempt's number (a throttled or handed-back attempt is made again under the same number)" }),
    node: z.string().nullable().meta({ description: "the node that ran it" }),
    startedAt: iso.nullable(),
    endedAt: iso,
    durationMs: z.number().min(0).nullable(),
    outcome: z.enum(["failed", "timeout", "throttled", "lease_expired", "shutdown", "node_restarted", "completed"])
      .meta({ description: "how it ended: failed, timeout, throttled (the target asked to wait; the attempt not used), lease_expired (its worker went quiet), shutdown or node_restarted (handed back), completed (a kept completed record's last attempt)" }),
    status: z.int().nullable().meta({ description: "the webhook's HTTP status, when it answered" }),
    exitCode: z.int().nullable().meta({ description: "the command's exit code, when it exited" }),
    error: z.string().nullable().meta({ description: "the first 500 bytes of the error" }),
  })
  .meta({ id: "Attempt" });

export const jobView = z
  .object({
    id: idString,
    type: z.string(),
    state: z.enum(JOB_STATES),
    priority: z.int().min(0).max(100),
    attempts: z.int().min(0),
    maxAttempts: z.int().min(1),
    runAt: iso,
    createdAt: iso,
    lastError: z.string().nullable(),
    key: z.string().nullable().meta({ description: "the job's flow-control key, or null" }),
    waitingFor: z.enum(["scheduled", "backoff", "paused", "rate_limit", "key_concurrency", "type_concurrency", "breaker_open", "workers_busy", "awaiting_worker", "no_handler"])
      .nullable().optional()
      .meta({ description: "why a pending or scheduled job waits, as the answering node sees it; null while it runs; absent for dead and completed jobs" }),
    throttles: z.int().min(0).meta({ description: "times a target pushed back (429/503 with Retry-After) and the job waited without using an attempt" }),
    expiresAt: iso.optional().meta({ description: "no attempt starts after this moment (jobs submitted with expiresAt or ttlMs; not kept on completed records)" }),
    payload: z.unknown().meta({ description: "the payload as submitted (any JSON)" }),
    failedAt: iso.optional().meta({ description: "when the job was dead-lettered (dead jobs only)" }),
    finishedAt: iso.optional().meta({ description: "when the job completed (completed records only, kept with --keep-completed)" }),
    result: z.string().nullable().optional().meta({ description: "the start of the handler's result, e.g. a command's stdout (completed records only)" }),
    traceparent: z.string().optional().meta({ description: "the W3C traceparent the job was submitted with (its webhook deliveries and pull workers get it too)" }),
    attemptHistory: z.array(attemptRecord).optional()
      .meta({ description: "the attempts that did not complete the job, oldest first (the newest 20 are kept); a kept completed record ends with the attempt that completed it" }),
  })
  .meta({ id: "Job" });
export type JobViewJson = z.infer<typeof jobView>;

export const deadPage = z
  .object({
    jobs: z.array(jobView),
    next: idString.nullable().meta({ description: "pass as `after` for the next page; null on the last page" }),
  })
  .meta({ id: "DeadPage" });

export const jobPage = z
  .object({
    jobs: z.array(jobView),
    next: idString.nullable().meta({ description: "pass as `after` (with the same state, type and order) for the next page; null on the last page" }),
  })
  .meta({ id: "JobPage" });

export const idReply = z.object({ id: idString }).meta({ id: "IdReply" });
export const submitReply = z
  .object({ id: idString, duplicate: z.literal(true).optional().meta({ description: "present when the idempotency key was held: the id is the holder's" }) })
  .meta({ id: "SubmitReply" });
export const submitBatchReply = z
  .object({
    ids: z.array(idString),
    duplicates: z.array(z.boolean()).optional().meta({ description: "per job, whether it named a job already holding its idempotency key (present when any job has a key)" }),
  })
  .meta({ id: "SubmitBatchReply" });
export const cancelReply = z.object({ id: idString, state: z.literal("cancelling") }).meta({ id: "CancelReply" });
export const statusReply = z.object({ status: z.enum(["ok", "ready"]) }).meta({ id: "Status" });
export const countReply = z.object({ count: z.int().min(0) }).meta({ id: "CountReply" });

const stateCounts = z
  .object({ pending: z.int().min(0), scheduled: z.int().min(0), inflight: z.int().min(0), dead: z.int().min(0), completed: z.int().min(0) })
  .meta({ id: "StateCounts", description: "pending: due and waiting; scheduled: waiting for runAt or a retry backoff; completed: records kept by --keep-completed" });

export const statsReply = z
  .object({
    jobs: stateCounts.meta({ description: "every job in the database, by state" }),
    types: z.record(z.string(), stateCounts).meta({ description: "the same, per job type" }),
    oldestReadyAgeSeconds: z.number().min(0).nullable().meta({ description: "how long the longest-waiting due job has waited; null when none is waiting" }),
    completedLastMinute: z.int().min(0).meta({ description: "jobs this process completed in the last 60 seconds" }),
  })
  .meta({ id: "Stats" });

const samples = (description: string) => z.array(z.number().min(0).nullable()).meta({ description });

export const historyReply = z
  .object({
    stepMs: z.int().min(1).meta({ description: "the time between samples (ms)" }),
    start: iso.nullable().meta({ description: "when the first sample was taken (sample i at start + i × stepMs); null before the first" }),
    series: z.object({
      submitted: samples("jobs this node committed in each step (submits and schedule ticks)"),
      completed: samples("jobs this node completed in each step"),
      failed: samples("attempts that failed on this node in each step (errors and timeouts, retried or not)"),
      dead: samples("jobs this node moved to the dead letters in each step (failed for good, or expired)"),
      ready: samples("due jobs waiting in this node's heap when the sample was taken"),
      scheduled: samples("jobs in this node's heap waiting for their time (runAt or a retry backoff) when the sample was taken"),
      running: samples("jobs this node was running when the sample was taken"),
      waitMs: samples("the mean wait from ready to start (ms) of the jobs this node started in each step; null when none started"),
    }).meta({ description: "one array per series, oldest first, all as long as each other; null where no sample was taken" }),
  })
  .meta({ id: "StatsHistory" });

export const schedulesReply = z
  .object({
    schedules: z.array(z.object({
      name: z.string(),
      type: z.string().meta({ description: "the job type each tick submits" }),
      cron: z.string().nullable().meta({ description: "the cron expression, or null for an `every` schedule" }),
      everyMs: z.int().min(1).nullable().meta({ description: "the interval in ms, or null for a cron schedule" }),
      timezone: z.string().meta({ description: "the IANA time zone of the cron expression" }),
      catchUp: z.enum(["none", "last", "all"]),
      nextTick: iso.nullable().meta({ description: "the next tick this node will offer" }),
      lastTick: iso.nullable().meta({ description: "the last tick enqueued (by any node), or null before the first" }),
      lastJob: z.object({ id: idString, state: z.enum(["pending", "scheduled", "inflight", "dead", "completed", "gone"]) }).nullable()
        .meta({ description: "the last tick's job and its state now (gone: it completed and left no record)" }),
    }).meta({ id: "Schedule" })),
  })
  .meta({ id: "Schedules" });
const rate = z
  .object({ limit: z.int().min(1), perMs: z.int().min(1), burst: z.int().min(1) })
  .meta({ id: "Rate", description: "at most `limit` starts per `perMs` ms, `burst` of them back to back after a quiet spell" });

export const typePolicy = z
  .object({
    timeoutMs: z.int().min(1).meta({ description: "per-attempt timeout" }),
    maxAttempts: z.int().min(1),
    priority: z.int().min(0).max(100).meta({ description: "the priority of submits that give none" }),
    concurrency: z.int().min(1).optional().meta({ description: "most jobs of the type running at once in one process" }),
    backoff: z.object({ baseMs: z.int().min(0).optional(), capMs: z.int().min(0).optional() }).optional()
      .meta({ description: "the type's own retry backoff (a missing half is the server's)" }),
    rate: rate.optional().meta({ description: "starts of the type, across every node" }),
    keyConcurrency: z.int().min(1).optional().meta({ description: "jobs of one key running at once, across every node" }),
    keyRate: rate.optional().meta({ description: "starts of one key's jobs, across every node" }),
    maxThrottles: z.int().min(0).optional().meta({ description: "times a target may push back on one job without using an attempt" }),
    breaker: z.object({ failures: z.int().min(1), coolMs: z.int().min(1) }).optional()
      .meta({ description: "after `failures` failures in a row toward a target, stop sending there for `coolMs`" }),
  })
  .meta({ id: "TypePolicy" });

export const typeEntry = z
  .object({
    type: z.string(),
    paused: z.boolean().meta({ description: "paused on every node sharing the database: its jobs are accepted and wait" }),
    registered: z.boolean().meta({ description: "false for a type with jobs in the database but none of the answering node's types file (dropped by a reload, or another node's): its jobs wait" }),
    policy: typePolicy.nullable().meta({ description: "null when the type is not registered on the answering node" }),
    running: z.int().min(0).meta({ description: "jobs of the type running now, on every node" }),
    waiting: z.int().min(0).meta({ description: "jobs of the type not started yet (due or scheduled), on every node" }),
    tokens: z.int().min(0).optional().meta({ description: "with a rate: the starts it allows right now, back to back, across every node (its burst after a quiet spell)" }),
    effectiveConcurrency: z.int().min(1).optional().meta({ description: "most jobs of the type the answering node runs at once now: its concurrency, cut while its target pushes back (AIMD)" }),
    breaker: z.enum(["closed", "open", "half_open"]).optional().meta({ description: "the breaker toward the type's target on the answering node" }),
    breakerOpenUntil: iso.optional().meta({ description: "while the breaker is open: when it lets one probe through" }),
  })
  .catchall(z.unknown())
  .meta({ id: "JobType", description: "a registered job type, or one with jobs but no handler here; flow control may add fields of its own (effective concurrency, breaker state)" });

export const typesReply = z.object({ types: z.array(typeEntry) }).meta({ id: "JobTypes" });
export const pauseReply = z.object({ type: z.string(), paused: z.boolean() }).meta({ id: "PauseReply" });

export const errorReply = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .meta({ id: "Error" });
