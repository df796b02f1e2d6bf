// app.ts: the HTTP API's routes (Hono) over a queue's QueueApi: each route's checks and answer, the
// methods each path allows, and the JSON bodies that splice stored payload text. POST /submit is
// submit.ts's, /types types-routes.ts's, /claim and the pull workers' moves pull-routes.ts's, /admin admin-routes.ts's, the error envelope errors.ts's; authentication and origin
// rules gate the app from outside (auth.ts, origin.ts). No SQL: every effect goes through the QueueApi.
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context } from "hono";
import { z } from "zod";
import { JobQueueError, badRequest, methodNotAllowed, notFound } from "../errors.ts";
import type { QueueApi } from "../queue/api.ts";
import type { AttemptRecord, JobView } from "../store/rows.ts";
import {
  DEAD_PAGE_DEFAULT, DEAD_PAGE_MAX_BYTES, JOB_PAGE_DEFAULT, JOB_PAGE_MAX_BYTES, bulkTypeQuery, deadListQuery, jobIdParam, jobListQuery,
  type attemptRecord, type JobViewJson, type cancelReply, type historyReply, type schedulesReply,
} from "./api-schema.ts";
import { dashboardPage } from "./dashboard.ts";
import { errorResponse, toPublicError } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import { submit } from "./submit.ts";
import { PULL_ROUTES, mountPullRoutes } from "./pull-routes.ts";
import { TYPES_ROUTES, mountTypesRoutes } from "./types-routes.ts";
import { ADMIN_ROUTES, mountAdminRoutes } from "./admin-routes.ts";
import { describeIssues, readableIssue } from "./submit-schema.ts";

/** The HTTP settings of the app: the body size limit and the queue-full cap. */
export interface HttpSettings {
  bodyLimitBytes: number;
  /** A submit that would take the queue's queuedCount() past this gets 429 queue_full; 0 = no limit. */
  maxQueued: number;
}

/** What the routes use: the queue's API and the HTTP settings. */
export type AppDeps = QueueApi & HttpSettings;

/** Every route and the methods it allows; any other method on these paths is a 405. */
const ROUTES: Record<string, string[]> = {
  "/submit": ["POST"],
  "/jobs": ["GET", "HEAD"],
  "/jobs/:id": ["GET", "HEAD", "DELETE"],
  "/stats": ["GET", "HEAD"],
  "/stats/history": ["GET", "HEAD"],
  "/schedules": ["GET", "HEAD"],
  "/openapi.json": ["GET", "HEAD"],
  "/dead": ["GET", "HEAD", "DELETE"],
  "/dead/retry": ["POST"],
  "/dead/:id": ["DELETE"],
  "/dead/:id/retry": ["POST"],
  "/health": ["GET", "HEAD"],
  "/ready": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
  "/ui": ["GET", "HEAD"],
  ...TYPES_ROUTES,
  ...PULL_ROUTES,
  ...ADMIN_ROUTES,
};

/** The HTTP API over a queue: what its routes ask of `api`, within `settings`. */
export function createApp(api: QueueApi, settings: HttpSettings): Hono {
  const deps: AppDeps = { ...api, ...settings };
  const app = new Hono();
  // Jobs of submits still waiting for their commit: not yet in queuedCount(), but they will be.
  const cap = { committing: 0 };

  app.post("/submit", (c) => submit(c, deps, cap));
  app.get("/jobs", async (c) => {
    const q = parseQuery(jobListQuery, c);
    const limit = q.limit ?? JOB_PAGE_DEFAULT;
    const rows = await deps.listJobs({
      state: q.state, order: q.order ?? "oldest", afterId: q.after ?? 0, limit: limit + 1, maxBytes: JOB_PAGE_MAX_BYTES,
      ...(q.type !== undefined && { type: q.type }),
    });
    return pageText(c, rows, limit, JOB_PAGE_MAX_BYTES);
  });
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
      afterId: q.after ?? 0, order: q.order ?? "oldest", limit: limit + 1, maxBytes: DEAD_PAGE_MAX_BYTES, ...(q.type !== undefined && { type: q.type }),
    });
    return pageText(c, rows, limit, DEAD_PAGE_MAX_BYTES);
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
  app.get("/stats/history", (c) => {
    const { stepMs, start, series } = deps.history();
    return c.json({ stepMs, start: start === null ? null : new Date(start).toISOString(), series } satisfies z.infer<typeof historyReply>);
  });
  app.get("/schedules", async (c) => {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const schedules = (await deps.schedules()).map((s): z.infer<typeof schedulesReply>["schedules"][number] => ({
      name: s.name, type: s.type, cron: s.cron, everyMs: s.everyMs, timezone: s.timezone, catchUp: s.catchUp,
      nextTick: iso(s.nextTick), lastTick: iso(s.lastTick),
      lastJob: s.lastJobId === null || s.lastJobState === null ? null : { id: String(s.lastJobId), state: s.lastJobState },
    }));
    return c.json({ schedules });
  });
  mountPullRoutes(app, { remote: deps.remote, accepting: deps.accepting, bodyLimitBytes: deps.bodyLimitBytes });
  mountTypesRoutes(app, { types: deps.types, ...(deps.flowStatus !== undefined && { flowStatus: deps.flowStatus }) });
  mountAdminRoutes(app, { backup: deps.backup });
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

/**
 * The longest run of `rows` (at least one) within `limit` jobs and `maxBytes` of payload, and
 * whether more rows follow it. `rows` came from a listing asked for limit + 1 rows and the same
 * budget, so a row past the page means more; a lone row over the budget by itself cannot tell,
 * and says more (the next page may then be empty).
 */
function fitPage(rows: JobView[], limit: number, maxBytes: number): { page: JobView[]; more: boolean } {
  let bytes = 0;
  let n = 0;
  for (; n < rows.length && n < limit; n++) {
    const size = Buffer.byteLength(rows[n]!.payload);
    if (n > 0 && bytes + size > maxBytes) break;
    bytes += size;
  }
  return { page: rows.slice(0, n), more: rows.length > n || bytes > maxBytes };
}

/** A page of a listing as GET /jobs and GET /dead answer it: the jobs that fit, and the cursor of the next page. */
function pageText(c: Context, rows: JobView[], limit: number, maxBytes: number): Response {
  const { page, more } = fitPage(rows, limit, maxBytes);
  const next = more ? String(page[page.length - 1]!.id) : null;
  return jsonText(c, `{"jobs":[${page.map(jobText).join(",")}],"next":${JSON.stringify(next)}}`);
}

function rejectBadId(result: { success: boolean }): void {
  if (!result.success) {
    throw badRequest(`job id must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}`, "invalid_id");
  }
}

/**
 * A query string checked against its schema; 400 invalid_request naming the parameter otherwise (a
 * parameter the route does not take is named first too: `color: unknown parameter`). A parameter
 * given twice arrives as its first value.
 */
function parseQuery<S extends z.ZodType>(schema: S, c: Context): z.output<S> {
  const result = schema.safeParse(c.req.query(), { error: readableIssue });
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((i): z.core.$ZodIssue[] =>
    i.code === "unrecognized_keys" ? i.keys.map((key) => ({ ...i, path: [...i.path, key], message: "unknown parameter" })) : [i]);
  throw badRequest(describeIssues(issues), "invalid_request");
}

/** A body that is JSON text already (it holds a payload as stored), sent as c.json would send it. */
function jsonText(c: Context, text: string): Response {
  return c.body(text, 200, { "content-type": "application/json" });
}

/**
 * A job as GET /jobs/:id, GET /jobs and GET /dead show it, as JSON text: the payload is spliced in as stored,
 * so it reads exactly as the producer sent it (never parsed and written out again).
 */
function attemptJson(a: AttemptRecord): z.infer<typeof attemptRecord> {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    attempt: a.attempt, node: a.node, startedAt: a.startedAt === null ? null : iso(a.startedAt), endedAt: iso(a.endedAt),
    // From the same whole milliseconds the two times show (PostgreSQL's clock has microseconds).
    durationMs: a.startedAt === null ? null : Math.max(0, Math.floor(a.endedAt) - Math.floor(a.startedAt)),
    outcome: a.outcome, status: a.status, exitCode: a.exitCode, error: a.error,
  };
}

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
    key: job.key,
    throttles: job.throttles,
    ...(job.waitingFor !== undefined && { waitingFor: job.waitingFor }),
    ...(job.startBy !== null && { expiresAt: new Date(job.startBy).toISOString() }),
    ...(job.failedAt !== null && { failedAt: new Date(job.failedAt).toISOString() }),
    ...(job.finishedAt !== undefined && { finishedAt: new Date(job.finishedAt).toISOString(), result: job.result ?? null }),
    ...(job.trace != null && { traceparent: job.trace }),
    ...(job.attemptHistory !== undefined && { attemptHistory: job.attemptHistory.map(attemptJson) }),
  };
  const fields = JSON.stringify(view);
  return `${fields.slice(0, -1)},"payload":${job.payload}}`;
}
