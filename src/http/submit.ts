// submit.ts: POST /submit: the checks in order of cost (accepting, content type, the queue cap and
// the byte bound before the body is read, then strict UTF-8 JSON, the schema and the job types),
// and the answer only after the store has committed. Knows no other route.
import type { Context } from "hono";
import type { z } from "zod";
import { JobQueueError, badRequest, payloadTooLarge, unsupportedMediaType } from "../errors.ts";
import type { InsertResult, NewJob } from "../store/rows.ts";
import type { submitBatchReply, submitReply } from "./api-schema.ts";
import type { AppDeps } from "./app.ts";
import { MAX_DELAY_MS, formatPath, parseSubmitBody, toNewJob, type SubmitBody } from "./submit-schema.ts";

/** What a full queue tells a producer to wait before trying again, in seconds. */
const QUEUE_FULL_RETRY_AFTER_S = 1;

/** POST /submit: checks in order of cost, and answers only after the store has committed. */
export async function submit(c: Context, deps: AppDeps, cap: { committing: number }): Promise<Response> {
  if (!deps.accepting()) {
    throw new JobQueueError("shutting_down", "the server is shutting down", 503, { "retry-after": "1" });
  }
  requireJson(c.req.header("content-type"));
  checkRoom(deps, cap, 1); // a full queue refuses before reading the body
  deps.admit(Number(c.req.header("content-length")) || 0); // and so does a stalled store holding its byte bound
  const { text, value } = parseJson(await readBody(c.req.raw, deps.bodyLimitBytes));
  const parsed = parseSubmitBody(value, text);
  const jobs = toNewJobs(parsed, deps);
  // The producer's trace context goes with every job of the request (W3C: a malformed one is ignored).
  const trace = traceparentOf(c.req.header("traceparent"));
  if (trace !== null) for (const job of jobs) job.trace = trace;
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

/** A JSON request body: content type checked, at most `limit` bytes, strict UTF-8 JSON (any failure a 4xx). */
export async function readJsonBody(c: Context, limit: number): Promise<unknown> {
  requireJson(c.req.header("content-type"));
  return parseJson(await readBody(c.req.raw, limit)).value;
}

/**
 * A W3C trace context `traceparent` header (version-traceid-parentid-flags, lower-case hex), or
 * null when absent or malformed: the spec has a receiver ignore one it cannot parse rather than
 * refuse the request. Version ff and all-zero ids are invalid; a later version may add fields.
 */
export function traceparentOf(header: string | undefined): string | null {
  if (header === undefined || header.length > 512) return null;
  const value = header.trim();
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(value);
  if (m === null || m[1] === "ff" || (m[1] === "00" && m[5] !== undefined)) return null;
  if (/^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return null;
  return value;
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
    // Fast path (the stream reader below is much slower per request): over HTTP/1.1 the declared
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
    return toNewJob(job, now, defaults, batch ? i : null);
  });
}
