// pull-routes.ts: the pull-worker API over HTTP: POST /claim (a long-poll for jobs of pull types) and
// POST /jobs/:id/complete, /fail, /heartbeat (fenced by the job's lease token: a claim that is gone
// answers 409 and changes nothing). Mounted by app.ts behind the same gates as every route. No SQL
// and no pool here: every effect goes through the queue's RemoteWorkers.
import type { Context, Hono } from "hono";
import type { z } from "zod";
import { JobQueueError, badRequest } from "../errors.ts";
import type { RemoteJob, RemoteWorkers } from "../pool/remote.ts";
import { leaseLost } from "../pool/remote.ts";
import { RESULT_LIMIT } from "../pool/attempt.ts";
import { idText } from "./api-schema.ts";
import {
  FAIL_ERROR_MAX, claimRequest, completeRequest, failRequest, heartbeatRequest,
  type heartbeatReply, type moveReply, type pulledJob,
} from "./pull-schema.ts";
import { readJsonBody } from "./submit.ts";
import { describeIssues, readableIssue } from "./submit-schema.ts";

export interface PullRouteDeps {
  remote: Pick<RemoteWorkers, "claim" | "complete" | "fail" | "heartbeat">;
  /** Accepting work? false while shutting down (a claim then answers 503). */
  accepting: () => boolean;
  bodyLimitBytes: number;
}

/** The routes and the methods each allows (app.ts answers any other method with 405). */
export const PULL_ROUTES: Record<string, string[]> = {
  "/claim": ["POST"],
  "/jobs/:id/complete": ["POST"],
  "/jobs/:id/fail": ["POST"],
  "/jobs/:id/heartbeat": ["POST"],
};

/** A request body checked against its schema; 400 invalid_request naming the field otherwise. */
async function body<S extends z.ZodType>(schema: S, c: Context, limit: number): Promise<z.output<S>> {
  const result = schema.safeParse(await readJsonBody(c, limit), { error: readableIssue });
  if (!result.success) throw badRequest(describeIssues(result.error.issues), "invalid_request");
  return result.data;
}

function pathId(c: Context): number {
  const result = idText.safeParse(c.req.param("id"));
  if (!result.success) throw badRequest(`job id must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}`, "invalid_id");
  return result.data;
}

/** A pulled job as JSON text: the payload spliced in as stored. */
function jobText(j: RemoteJob): string {
  const view: Omit<z.input<typeof pulledJob>, "payload"> = {
    id: String(j.id), type: j.type, attempt: j.attempt, maxAttempts: j.maxAttempts, priority: j.priority,
    ...(j.key !== null && { key: j.key }),
    ...(j.traceparent !== null && { traceparent: j.traceparent }),
    leaseToken: j.leaseToken, leaseUntil: new Date(j.leaseUntil).toISOString(),
  };
  const fields = JSON.stringify(view);
  return `${fields.slice(0, -1)},"payload":${j.payload}}`;
}

/** What a worker's result is kept as: a string as it is, anything else as JSON text; at most RESULT_LIMIT bytes. */
function resultText(result: unknown): string | null {
  if (result === undefined || result === null) return null;
  const text = typeof result === "string" ? result : JSON.stringify(result);
  const bytes = Buffer.from(text);
  return (bytes.length > RESULT_LIMIT ? bytes.subarray(0, RESULT_LIMIT).toString() : text).replaceAll("\u0000", "\uFFFD");
}

export function mountPullRoutes(app: Hono, deps: PullRouteDeps): void {
  app.post("/claim", async (c) => {
    if (!deps.accepting()) throw new JobQueueError("shutting_down", "the server is shutting down", 503, { "retry-after": "1" });
    const req = await body(claimRequest, c, deps.bodyLimitBytes);
    const jobs = await deps.remote.claim({
      types: req.types, max: req.max ?? 1, waitMs: req.waitMs ?? 0,
      ...(req.leaseMs !== undefined && { leaseMs: req.leaseMs }),
      signal: c.req.raw.signal,
    });
    return c.body(`{"jobs":[${jobs.map(jobText).join(",")}]}`, 200, { "content-type": "application/json" });
  });
  app.post("/jobs/:id/complete", async (c) => {
    const id = pathId(c);
    const req = await body(completeRequest, c, deps.bodyLimitBytes);
    const r = await deps.remote.complete(id, req.leaseToken, resultText(req.result));
    if (!r.ok) throw leaseLost(id);
    return c.json({ id: String(id), state: r.state } satisfies z.infer<typeof moveReply>);
  });
  app.post("/jobs/:id/fail", async (c) => {
    const id = pathId(c);
    const req = await body(failRequest, c, deps.bodyLimitBytes);
    const error = req.error.length > FAIL_ERROR_MAX ? `${req.error.slice(0, FAIL_ERROR_MAX)}…` : req.error;
    const r = await deps.remote.fail(id, req.leaseToken, error, req.retry ?? true);
    if (!r.ok) throw leaseLost(id);
    return c.json({ id: String(id), state: r.state } satisfies z.infer<typeof moveReply>);
  });
  app.post("/jobs/:id/heartbeat", async (c) => {
    const id = pathId(c);
    const req = await body(heartbeatRequest, c, deps.bodyLimitBytes);
    const r = await deps.remote.heartbeat(id, req.leaseToken, req.extendMs);
    if (!r.ok) throw leaseLost(id);
    return c.json({ id: String(id), leaseUntil: new Date(r.leaseUntil).toISOString() } satisfies z.infer<typeof heartbeatReply>);
  });
}
