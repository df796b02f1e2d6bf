// submit-schema.ts: what a producer may send to POST /submit (one job or {"jobs": [...]}), the
// readable 400 messages for what it may not, and the step from a validated job to a NewJob, whose
// payload is the text the producer sent. Knows no routes and no job types (app.ts checks those),
// and of the store only the NewJob shape.
import { z } from "zod";
import { badRequest } from "../errors.ts";
import type { NewJob } from "../store/rows.ts";
import { jsonPath, payloadFault } from "./payload-rules.ts";
import { scanBody, type BodySpans } from "./payload-spans.ts";

export const MAX_BATCH_JOBS = 1000;
export const MAX_PAYLOAD_BYTES = 262_144;
/** Deeper than any real document, far below where JSON.parse or a consumer's parser would overflow its stack. */
export const MAX_PAYLOAD_DEPTH = 128;
/** Furthest a job may be scheduled ahead, by delayMs or by runAt. */
export const MAX_DELAY_MS = 365 * 24 * 60 * 60 * 1000;
const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000;
export const MAX_IDEMPOTENCY_KEY = 200;
/** Longest flow-control key (a tenant, customer or resource name). */
export const MAX_FLOW_KEY = 200;
/** How many issues (or unknown field names) one 400 message lists before summarising the rest. */
const MAX_LISTED_ISSUES = 5;

/** An integer in [min, max]; every way to miss it gets the same message. */
function intIn(min: number, max: number) {
  const error = `expected an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A key (idempotency or flow control): 1 to `max` well-formed characters, none of them control characters. */
function keyText(max: number) {
  const error = `expected 1 to ${max} characters`;
  return z
    .string({ error: "expected a string" })
    .min(1, { error })
    .max(max, { error })
    .regex(/^[^\u0000-\u001f\u007f]*$/, { error: "must not contain control characters" })
    .refine((key) => key.isWellFormed(), { error: "contains a lone UTF-16 surrogate" });
}

export const jobSchema = z
  .strictObject({
    type: z
      .string()
      .min(1, { error: "must not be empty" })
      .max(100, { error: "must be at most 100 characters" })
      .regex(/^[A-Za-z0-9_.:-]+$/, { error: "may contain only letters, digits and _ . : -" }),
    payload: z
      .unknown()
      .superRefine((p, ctx) => {
        const fault = payloadFault(p, MAX_PAYLOAD_DEPTH);
        if (fault !== null) ctx.addIssue({ code: "custom", message: fault.message + where(fault.at), continue: false });
      })
      // Its size is that of the text as sent, checked once the text is found (parseSubmitBody).
      .default(null)
      .meta({ description: `any JSON, stored and delivered exactly as sent; at most ${MAX_PAYLOAD_BYTES} bytes (UTF-8) and ${MAX_PAYLOAD_DEPTH} levels of nesting` }),
    priority: intIn(0, 100).optional(),
    maxAttempts: intIn(1, 100).optional(),
    runAt: z.iso
      .datetime({ offset: true, error: "expected an ISO 8601 date-time with a timezone, e.g. 2030-01-01T00:00:00Z" })
      .optional(),
    delayMs: intIn(0, MAX_DELAY_MS).optional(),
    timeoutMs: intIn(1, MAX_TIMEOUT_MS).optional(),
    idempotencyKey: keyText(MAX_IDEMPOTENCY_KEY).optional(),
    key: keyText(MAX_FLOW_KEY)
      .optional()
      .meta({ description: "the job's flow-control key (a tenant, customer or resource): types with key_concurrency or key_rate limit each key, and keys of one type take turns" }),
    expiresAt: z.iso
      .datetime({ offset: true, error: "expected an ISO 8601 date-time with a timezone, e.g. 2030-01-01T00:00:00Z" })
      .optional()
      .meta({ description: "no attempt starts after this moment: the job is dead-lettered with the error \"expired\" instead" }),
    ttlMs: intIn(1, MAX_DELAY_MS).optional()
      .meta({ description: "expiresAt as milliseconds from submission" }),
  })
  .refine((job) => job.runAt === undefined || job.delayMs === undefined, {
    error: "give runAt or delayMs, not both",
  })
  .refine((job) => job.expiresAt === undefined || job.ttlMs === undefined, {
    error: "give expiresAt or ttlMs, not both",
  })
  .meta({ id: "SubmitJob", description: "One job. runAt and delayMs exclude each other, as do expiresAt and ttlMs; unknown fields are refused." });

export const batchSchema = z
  .strictObject({
    jobs: z
      .array(jobSchema, { error: `expected an array of 1 to ${MAX_BATCH_JOBS} jobs` })
      .min(1, { error: `expected an array of 1 to ${MAX_BATCH_JOBS} jobs` })
      .max(MAX_BATCH_JOBS, { error: `expected an array of 1 to ${MAX_BATCH_JOBS} jobs` }),
  })
  .meta({ id: "SubmitBatch", description: "1 to 1000 jobs, committed all or nothing." });

/** A validated job, and its payload's JSON text exactly as sent ("null" when it had none). */
export type SubmittedJob = z.output<typeof jobSchema> & { payloadText: string };

export interface SubmitBody {
  jobs: SubmittedJob[];
  /** True when the body was {"jobs": [...]}: the reply lists ids, and paths start with jobs[i]. */
  batch: boolean;
}

/** `["jobs", 3, "priority"]` → `jobs[3].priority`; the empty path (the body itself) → `body`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`;
  }
  return out || "body";
}

/** Messages for the issues the schema does not word itself (missing, wrong type, unknown field). */
export const readableIssue: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === "invalid_type") {
    if (issue.input === undefined) return "is required";
    if (issue.expected === "object") return "expected a JSON object";
    return `expected ${/^[aeiou]/.test(issue.expected) ? "an" : "a"} ${issue.expected}`;
  }
  if (issue.code === "unrecognized_keys") {
    const named = issue.keys.slice(0, MAX_LISTED_ISSUES).map((k) => JSON.stringify(k));
    if (issue.keys.length > named.length) named.push("…");
    return `unknown field${issue.keys.length > 1 ? "s" : ""} ${named.join(", ")}`;
  }
  return undefined;
};

export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  // One value can miss several checks with the same wording (2^53 + 1 is neither an integer nor <= 100).
  const lines = [...new Set(issues.map((i) => `${formatPath(i.path)}: ${i.message}`))];
  const listed = lines.slice(0, MAX_LISTED_ISSUES);
  const rest = lines.length - listed.length;
  return listed.join("; ") + (rest > 0 ? `; and ${rest} more` : "");
}

function isBatchBody(body: unknown): boolean {
  return typeof body === "object" && body !== null && !Array.isArray(body) && Object.hasOwn(body, "jobs");
}

/** ` (at $.a[3])` for a place inside a payload; nothing for the payload itself or no place. */
function where(at: string | null): string {
  return at === null || at === "$" ? "" : ` (at ${at})`;
}

/**
 * Validate a body: `body` is JSON.parse(text). Throws JobQueueError 400 "invalid_request" naming the
 * field paths. Each job's payload is then taken from `text` verbatim, so a member name repeated
 * anywhere is refused: parsers disagree on which of two values wins (JSON.parse keeps the last,
 * others the first or fail), and the payload we checked must be the payload every consumer reads.
 */
export function parseSubmitBody(body: unknown, text: string): SubmitBody {
  const batch = isBatchBody(body);
  const result = batch
    ? batchSchema.safeParse(body, { error: readableIssue })
    : jobSchema.safeParse(body, { error: readableIssue });
  if (!result.success) throw badRequest(describeIssues(result.error.issues), "invalid_request");
  const spans = scanBody(text);
  if (spans.duplicate !== null) throw badRequest(describeDuplicate(spans.duplicate), "invalid_request");
  const jobs = "jobs" in result.data ? result.data.jobs : [result.data];
  return { jobs: jobs.map((job, i) => withPayloadText(job, text, batch ? spans.jobs[i] : spans.payload, batch ? ["jobs", i, "payload"] : ["payload"])), batch };
}

function withPayloadText(job: z.output<typeof jobSchema>, text: string, span: BodySpans["payload"], path: (string | number)[]): SubmittedJob {
  const payloadText = span === undefined ? "null" : text.slice(span.start, span.end);
  if (Buffer.byteLength(payloadText) > MAX_PAYLOAD_BYTES) {
    throw badRequest(`${formatPath(path)}: must be at most ${MAX_PAYLOAD_BYTES} bytes of JSON as sent`, "invalid_request");
  }
  return { ...job, payloadText };
}

/** `jobs[1].payload: has the member "x" twice (at $.a)`, or `body: has the member "type" twice`. */
function describeDuplicate({ name, path }: { name: string; path: (string | number)[] }): string {
  const inPayload = path[0] === "payload" ? 1 : path[0] === "jobs" && path[2] === "payload" ? 3 : 0;
  const field = inPayload === 0 ? path : path.slice(0, inPayload);
  const at = inPayload === 0 ? null : jsonPath(path.slice(inPayload));
  return `${formatPath(field)}: has the member ${JSON.stringify(name)} twice${where(at)}`;
}

/**
 * A validated job with the type's defaults applied and its first run time (and deadline) fixed
 * against `now`. `index` is its place in a batch (null for a single job), for the error's path.
 * A deadline that has passed, or that comes before the job's first run, is refused: such a job
 * could only ever be dead-lettered.
 */
export function toNewJob(
  job: SubmittedJob,
  now: number,
  typeDefaults: { priority: number; maxAttempts: number },
  index: number | null = null,
): NewJob {
  // A runAt in the past means "now": waiting earns priority only from submission on, so a
  // backdated runAt cannot buy more than the 0-100 priority range allows.
  const runAt = job.runAt !== undefined ? Math.max(Date.parse(job.runAt), now) : now + (job.delayMs ?? 0);
  const startBy = job.expiresAt !== undefined ? Date.parse(job.expiresAt) : job.ttlMs !== undefined ? now + job.ttlMs : undefined;
  if (startBy !== undefined && startBy < runAt) {
    const field = formatPath(index === null ? [job.expiresAt !== undefined ? "expiresAt" : "ttlMs"] : ["jobs", index, job.expiresAt !== undefined ? "expiresAt" : "ttlMs"]);
    throw badRequest(`${field}: the job would expire before it may first run (${new Date(runAt).toISOString()})`, "invalid_request");
  }
  return {
    type: job.type,
    payload: job.payloadText,
    priority: job.priority ?? typeDefaults.priority,
    maxAttempts: job.maxAttempts ?? typeDefaults.maxAttempts,
    runAt,
    timeoutMs: job.timeoutMs ?? null,
    ...(job.idempotencyKey !== undefined && { idempotencyKey: job.idempotencyKey }),
    ...(job.key !== undefined && { key: job.key }),
    ...(startBy !== undefined && { startBy }),
  };
}
