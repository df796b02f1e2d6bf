// app.ts: the HTTP surface (Hono): routes, request-body limits and parsing, the queue-full cap, and
// the one JSON error envelope {"error":{"code","message"}}. No SQL: every effect goes through the
// queue's QueueApi, and a 202 is sent only after its submit has committed. Internal faults never reach the client.
// Authentication is not here: http/auth.ts gates the whole app in front of it.
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import {
  JobQueueError, StoreOutcomeUnknownError, StoreRejectedError, StoreUnavailableError, badRequest, errorMessage, methodNotAllowed,
  notFound, payloadTooLarge, unsupportedMediaType,
} from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { QueueApi } from "../queue/api.ts";
import type { InsertResult, JobView, NewJob } from "../store/rows.ts";
import {
  DEAD_PAGE_DEFAULT, DEAD_PAGE_MAX_BYTES, bulkTypeQuery, deadListQuery, jobIdParam,
  type JobViewJson, type cancelReply, type submitBatchReply, type submitReply,
} from "./api-schema.ts";
import { dashboardPage } from "./dashboard.ts";
import { openApiDocument } from "./openapi.ts";
import { MAX_DELAY_MS, describeIssues, formatPath, parseSubmitBody, readableIssue, toNewJob, type SubmitBody } from "./submit-schema.ts";

/** The HTTP settings of the app: the body size limit and the queue-full cap. */
export interface HttpSettings {
  bodyLimitBytes: number;
  /** A submit that would take the queue's queuedCount() past this gets 429 queue_full; 0 = no limit. */
  maxQueued: number;
}

type AppDeps = QueueApi & HttpSettings;

/** Every route and the methods it allows; any other method on these paths is a 405. */
const ROUTES: Record<string, string[]> = {
  "/submit": ["POST"],
  "/jobs/:id": ["GET", "HEAD", "DELETE"],
  "/stats": ["GET", "HEAD"],
  "/openapi.json": ["GET", "HEAD"],
  "/dead": ["GET", "HEAD", "DELETE"],
  "/dead/retry": ["POST"],
  "/dead/:id": ["DELETE"],
  "/dead/:id/retry": ["POST"],
  "/health": ["GET", "HEAD"],
  "/ready": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
  "/ui": ["GET", "HEAD"],
};

/** What a full queue tells a producer to wait before trying again, in seconds. */
const QUEUE_FULL_RETRY_AFTER_S = 1;

/** The HTTP API over a queue: what its routes ask of `api`, within `settings`. */
export function createApp(api: QueueApi, settings: HttpSettings): Hono {
  const deps: AppDeps = { ...api, ...settings };
  const app = new Hono();
  // Jobs of submits still waiting for their commit: not yet in queuedCount(), but they will be.
  const cap = { committing: 0 };

  app.post("/submit", (c) => submit(c, deps, cap));
  app.get("/jobs/:id", zValidator("param", jobIdParam, rejectBadId), async (c) => {
    const job = await deps.getJob(c.req.valid("param").id);
    if (job === null) throw notFound("no such job");
    return jsonText(c, jobText(job));
  });
  app.delete("/jobs/:id", zValidator("param", jobIdParam, rejectBadId), async (c) => {
    const id = c.req.valid("param").id;
    const result = await deps.cancel(id);
    switch (result) {
      case "removed":
        return c.body(null, 204);
      case "cancelling":
        return c.json({ id: String(id), state: "cancelling" } satisfies z.infer<typeof cancelReply>, 202);
      case "dead":
        throw notFound(`job ${id} is dead: delete it with DELETE /dead/${id}`);
      case "elsewhere":
        throw new JobQueueError("running_elsewhere", `job ${id} is running in another process; cancel it there`, 409);
      case "not_found":
        throw notFound("no such job (or it has completed)");
    }
  });
  app.get("/dead", async (c) => {
    const q = parseQuery(deadListQuery, c);
    const limit = q.limit ?? DEAD_PAGE_DEFAULT;
    // One row more than the page (by count or by bytes) says whether there is a next page.
    const rows = await deps.dead.list({
      afterId: q.after ?? 0, limit: limit + 1, maxBytes: DEAD_PAGE_MAX_BYTES, ...(q.type !== undefined && { type: q.type }),
    });
    const { page, more } = deadPage(rows, limit, DEAD_PAGE_MAX_BYTES);
    const next = more ? String(page[page.length - 1]!.id) : null;
    return jsonText(c, `{"jobs":[${page.map(jobText).join(",")}],"next":${JSON.stringify(next)}}`);
  });
  app.post("/dead/retry", async (c) => c.json({ count: await deps.dead.retryType(parseQuery(bulkTypeQuery, c).type) }));
  app.delete("/dead", async (c) => c.json({ count: await deps.dead.purgeType(parseQuery(bulkTypeQuery, c).type) }));
  app.post("/dead/:id/retry", zValidator("param", jobIdParam, rejectBadId), async (c) => {
    const id = c.req.valid("param").id;
    if (!(await deps.dead.retry(id))) throw notFound("no such dead job");
    return c.json({ id: String(id) });
  });
  app.delete("/dead/:id", zValidator("param", jobIdParam, rejectBadId), async (c) => {
    if (!(await deps.dead.remove(c.req.valid("param").id))) throw notFound("no such dead job");
    return c.body(null, 204);
  });
  app.get("/stats", async (c) => c.json(await deps.stats()));
  let openapi: Record<string, unknown> | undefined;
  app.get("/openapi.json", (c) => c.json((openapi ??= openApiDocument())));
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", async (c) => {
    const reason = deps.accepting() ? await deps.notReadyReason() : "shutting down";
    if (reason !== null) throw new JobQueueError("not_ready", reason, 503);
    return c.json({ status: "ready" });
  });
  app.get("/metrics", async (c) =>
    c.body(await deps.metricsText(), 200, { "content-type": deps.metricsContentType }),
  );
  app.get("/ui", (c) => c.html(dashboardPage()));
  app.get("/", (c) => c.redirect("/ui"));

  for (const [path, allow] of Object.entries(ROUTES)) {
    app.all(path, (c) => {
      throw methodNotAllowed(c.req.method, c.req.path, allow);
    });
  }
  app.notFound((c) => errorResponse(c, notFound("no such route")));
  app.onError((err, c) => errorResponse(c, toPublicError(err, c, deps.logger)));
  return app;
}

/** POST /submit: checks in order of cost, and answers only after the store has committed. */
async function submit(c: Context, deps: AppDeps, cap: { committing: number }): Promise<Response> {
  if (!deps.accepting()) {
    throw new JobQueueError("shutting_down", "the server is shutting down", 503, { "retry-after": "1" });
  }
  requireJson(c.req.header("content-type"));
  checkRoom(deps, cap, 1); // a full queue refuses before reading the body
  deps.admit(Number(c.req.header("content-length")) || 0); // and so does a stalled store holding its byte bound
  const { text, value } = parseJson(await readBody(c.req.raw, deps.bodyLimitBytes));
  const parsed = parseSubmitBody(value, text);
  const jobs = toNewJobs(parsed, deps);
  checkRoom(deps, cap, jobs.length);
  cap.committing += jobs.length;
  let results: InsertResult[];
  try {
    results = await deps.submit(jobs);
  } finally {
    cap.committing -= jobs.length;
  }
  if (results.length !== jobs.length) throw new Error(`submit returned ${results.length} ids for ${jobs.length} jobs`);
  // 202 when anything new was committed; 200 when every job named one that already existed.
  const status = results.some((r) => !r.duplicate) ? 202 : 200;
  if (!parsed.batch) {
    const r = results[0]!;
    const reply: z.infer<typeof submitReply> = r.duplicate ? { id: String(r.id), duplicate: true } : { id: String(r.id) };
    return c.json(reply, status);
  }
  const ids = results.map((r) => String(r.id));
  const keyed = jobs.some((j) => j.idempotencyKey !== undefined);
  const reply: z.infer<typeof submitBatchReply> = keyed ? { ids, duplicates: results.map((r) => r.duplicate) } : { ids };
  return c.json(reply, status);
}

/**
 * The longest run of `rows` (at least one) within `limit` jobs and `maxBytes` of payload, and
 * whether more rows follow it. `rows` came from a listing asked for limit + 1 rows and the same
 * budget, so a row past the page means more; a lone row over the budget by itself cannot tell,
 * and says more (the next page may then be empty).
 */
function deadPage(rows: JobView[], limit: number, maxBytes: number): { page: JobView[]; more: boolean } {
  let bytes = 0;
  let n = 0;
  for (; n < rows.length && n < limit; n++) {
    const size = Buffer.byteLength(rows[n]!.payload);
    if (n > 0 && bytes + size > maxBytes) break;
    bytes += size;
  }
  return { page: rows.slice(0, n), more: rows.length > n || bytes > maxBytes };
}

/** Throws 429 queue_full when `adding` more jobs would take the queue past deps.maxQueued. */
function checkRoom(deps: AppDeps, cap: { committing: number }, adding: number): void {
  if (deps.maxQueued <= 0) return;
  const queued = deps.queuedCount() + cap.committing;
  if (queued + adding <= deps.maxQueued) return;
  throw new JobQueueError(
    "queue_full",
    `the queue holds ${queued} of at most ${deps.maxQueued} jobs: retry later`,
    429,
    { "retry-after": String(QUEUE_FULL_RETRY_AFTER_S) },
  );
}

function requireJson(contentType: string | undefined): void {
  const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase();
  if (mediaType !== "application/json") throw unsupportedMediaType();
}

/**
 * The body's bytes, at most `limit` of them. A declared content-length over the limit is refused
 * before reading; the streamed bytes are counted too, so a lying or missing length is caught.
 */
async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (Number(declared) > limit) throw payloadTooLarge(limit);
  if (req.body === null) return new Uint8Array(0);
  if (declared !== null) {
    // Fast path (the stream reader below costs half the request rate): over HTTP/1.1 the declared
    // length frames the body, so this reads at most `limit` bytes; a body handed over in-process
    // with a length that lied is still caught here.
    const bytes = new Uint8Array(await req.arrayBuffer().catch(cutOff));
    if (bytes.byteLength > limit) throw payloadTooLarge(limit);
    return bytes;
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read().catch(cutOff);
    if (done) return Buffer.concat(chunks, size);
    size += value.byteLength;
    if (size > limit) {
      reader.cancel().catch(() => {});
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
}

/**
 * A body that stopped arriving (the client hung up, or idled past --idle-timeout-s) is the client's
 * doing: a 400 nobody may hear, and not an internal fault to log.
 */
function cutOff(): never {
  throw badRequest("the request body ended before it was complete", "incomplete_body");
}

/** Strict UTF-8 (no silent U+FFFD replacement), then JSON; either failure is the client's. */
function parseJson(bytes: Uint8Array): { text: string; value: unknown } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badRequest("request body is not valid UTF-8", "invalid_json");
  }
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    throw badRequest("request body is not valid JSON", "invalid_json");
  }
}

/** Apply each job's type defaults; an unknown type is a 400 naming the job's field. */
function toNewJobs({ jobs, batch }: SubmitBody, deps: AppDeps): NewJob[] {
  const now = deps.clock();
  return jobs.map((job, i) => {
    const defaults = deps.typeDefaults(job.type);
    if (defaults === undefined) {
      const path = formatPath(batch ? ["jobs", i, "type"] : ["type"]);
      throw badRequest(`${path}: unknown job type "${job.type}"`, "invalid_request");
    }
    if (job.runAt !== undefined && Date.parse(job.runAt) > now + MAX_DELAY_MS) {
      const path = formatPath(batch ? ["jobs", i, "runAt"] : ["runAt"]);
      throw badRequest(`${path}: must be at most 365 days from now (as delayMs)`, "invalid_request");
    }
    return toNewJob(job, now, defaults);
  });
}

function rejectBadId(result: { success: boolean }): void {
  if (!result.success) {
    throw badRequest(`job id must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}`, "invalid_id");
  }
}

/** A query string checked against its schema; 400 invalid_request naming the parameter otherwise. */
function parseQuery<S extends z.ZodType>(schema: S, c: Context): z.output<S> {
  const result = schema.safeParse(c.req.query(), { error: readableIssue });
  if (!result.success) throw badRequest(describeIssues(result.error.issues), "invalid_request");
  return result.data;
}

/** A body that is JSON text already (it holds a payload as stored), sent as c.json would send it. */
function jsonText(c: Context, text: string): Response {
  return c.body(text, 200, { "content-type": "application/json" });
}

/**
 * A job as GET /jobs/:id and GET /dead show it, as JSON text: the payload is spliced in as stored,
 * so it reads exactly as the producer sent it (never parsed and written out again).
 */
function jobText(job: JobView): string {
  const view: Omit<JobViewJson, "payload"> = {
    id: String(job.id),
    type: job.type,
    state: job.state,
    priority: job.priority,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    runAt: new Date(job.runAt).toISOString(),
    createdAt: new Date(job.createdAt).toISOString(),
    lastError: job.lastError,
    ...(job.failedAt !== null && { failedAt: new Date(job.failedAt).toISOString() }),
    ...(job.finishedAt !== undefined && { finishedAt: new Date(job.finishedAt).toISOString(), result: job.result ?? null }),
  };
  const fields = JSON.stringify(view);
  return `${fields.slice(0, -1)},"payload":${job.payload}}`;
}

const CODE_FOR_STATUS: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "too_many_requests",
  503: "unavailable",
};

/** What a client is told about a failure; a JobQueueError is one as it stands. */
interface PublicError {
  status: ContentfulStatusCode;
  code: string;
  message: string;
  headers: Record<string, string>;
}

/** Seconds a client is told to wait after a store fault. */
const STORE_RETRY_AFTER_S = "1";

/**
 * JobQueueError and HTTPException as they are; a store fault as a 503 (or, for data the database
 * refused, a 400) that says whether anything took effect; anything else is logged and becomes a bare 500.
 */
function toPublicError(err: unknown, c: Context, logger: Logger): PublicError {
  if (err instanceof JobQueueError) return err;
  const retry = { "retry-after": STORE_RETRY_AFTER_S };
  const reading = c.req.method === "GET" || c.req.method === "HEAD";
  if (err instanceof StoreUnavailableError || (reading && err instanceof StoreOutcomeUnknownError)) {
    logger.warn("request failed: store unavailable", { method: c.req.method, path: c.req.path, err: errorMessage(err) });
    const message = reading ? "the job store is unavailable; retry later" : "the job store is unavailable; nothing was changed, retry later";
    return { status: 503, code: "unavailable", message, headers: retry };
  }
  if (err instanceof StoreOutcomeUnknownError) {
    logger.warn("request outcome unknown: the store did not answer", { method: c.req.method, path: c.req.path, err: errorMessage(err) });
    return {
      status: 503, code: "outcome_unknown", headers: retry,
      message: "the job store did not confirm the change: it may or may not have taken effect. Retry; a submit with an idempotencyKey is safe to retry",
    };
  }
  if (err instanceof StoreRejectedError) {
    logger.warn("request refused by the store", { method: c.req.method, path: c.req.path, err: errorMessage(err) });
    return { status: 400, code: "invalid_request", message: "the job store refused the request's data; nothing was changed", headers: {} };
  }
  if (err instanceof HTTPException) {
    const code = CODE_FOR_STATUS[err.status] ?? (err.status >= 500 ? "internal" : "bad_request");
    return { status: err.status, code, message: err.message || code.replaceAll("_", " "), headers: {} };
  }
  logger.error("request failed", {
    err: err instanceof Error ? err : String(err),
    method: c.req.method,
    path: c.req.path,
  });
  return { status: 500, code: "internal", message: "internal error", headers: {} };
}

function errorResponse(c: Context, err: PublicError): Response {
  return c.json({ error: { code: err.code, message: err.message } }, err.status, err.headers);
}
