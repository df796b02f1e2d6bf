// openapi.ts: the OpenAPI 3.1 document of the HTTP API. One entry per operation (OPERATIONS); the
// schemas come from the same zod schemas the routes validate with (z.toJSONSchema), and what the
// gates answer (401 and `security` where auth.ts wants the token, 403 where origin.ts may refuse)
// is added to every entry from the gates' own path sets. Builds a plain object; serves nothing.
import { z } from "zod";
import pkg from "../../package.json" with { type: "json" };
import { OPTIONS } from "../config/options.ts";
import {
  DEAD_PAGE_DEFAULT, DEAD_PAGE_MAX, DEAD_PAGE_MAX_BYTES, JOB_PAGE_DEFAULT, JOB_PAGE_MAX, JOB_PAGE_MAX_BYTES, MAX_JOB_ID, bulkTypeQuery, cancelReply,
  countReply, deadListQuery, deadPage, errorReply, historyReply, idReply, jobListQuery, jobPage, jobView, pauseReply, schedulesReply, statsReply, statusReply,
  submitBatchReply, submitReply, typesReply,
} from "./api-schema.ts";
import { ALWAYS_OPEN } from "./auth.ts";
import { BACKUP_BYTES_HEADER, BACKUP_MEDIA_TYPE, BACKUP_SHA256_HEADER } from "./admin-routes.ts";
import { ANY_HOST, STATE_CHANGING } from "./origin.ts";
import { MAX_BATCH_JOBS, batchSchema, jobSchema } from "./submit-schema.ts";
import {
  CLAIM_MAX, CLAIM_WAIT_MAX_MS, claimReply, claimRequest, completeRequest, failRequest, heartbeatReply, heartbeatRequest, moveReply,
} from "./pull-schema.ts";

type Json = Record<string, unknown>;

/** The groups operations are listed under. */
const TAGS = {
  jobs: "Submit jobs, list them by state and type, read one job's state, cancel a job.",
  "dead-letters": "Jobs that used up their attempts (or failed permanently, or expired): list, retry and delete them, one at a time or a whole type.",
  workers: "Workers in any language run the jobs of pull types (`pull = true`): they ask for jobs with a long-poll, then complete, fail or extend each one with its lease token.",
  types: "The registered job types with their policy and flow control; pause and resume a type on every node.",
  schedules: "The recurring schedules of the types file.",
  operations: "Counts, metrics, probes, backups, and this document.",
} as const;
type Tag = keyof typeof TAGS;

/**
 * One operation of the API. `path` is in OpenAPI form (`/jobs/{id}`); its `{…}` parameters come from
 * PATH_PARAMETERS. `responses` are the route's own: the gates' answers (401, 403) and `security`
 * are added from auth.ts and origin.ts, so a gated route gets them without listing them (a status
 * the entry lists itself keeps the entry's wording).
 */
interface Operation {
  method: "get" | "post" | "delete";
  path: string;
  tag: Tag;
  operationId: string;
  summary: string;
  description: string;
  parameters?: Json[];
  requestBody?: Json;
  responses: Record<string, Json>;
}

/** Component schemas read as input (request bodies) and as output (responses). */
const REQUEST_SCHEMAS = [jobSchema, batchSchema, claimRequest, completeRequest, failRequest, heartbeatRequest];
const RESPONSE_SCHEMAS = [
  claimReply, moveReply, heartbeatReply,
  jobView, jobPage, deadPage, statsReply, historyReply, schedulesReply, idReply, countReply, submitReply, submitBatchReply, cancelReply, statusReply, typesReply, pauseReply, errorReply,
];

/** The security scheme gated operations name. */
const BEARER = "bearer";

const ref = (schema: z.ZodType) => ({ $ref: `#/components/schemas/${idOf(schema)}` });

function idOf(schema: z.ZodType): string {
  const id = z.globalRegistry.get(schema)?.id;
  if (typeof id !== "string") throw new Error("an API schema has no id");
  return id;
}

/** A JSON Schema for an OpenAPI document: no $schema or $id of its own. */
function bare(schema: Json): Json {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/** Every registered schema converted one way; the ones asked for are kept, with those they refer to. */
function components(schemas: z.ZodType[], io: "input" | "output"): Record<string, Json> {
  const all = z.toJSONSchema(z.globalRegistry, {
    io, unrepresentable: "any", uri: (id) => `#/components/schemas/${id}`,
  }).schemas as Record<string, Json>;
  const out: Record<string, Json> = {};
  const wanted = schemas.map(idOf);
  for (let id = wanted.pop(); id !== undefined; id = wanted.pop()) {
    if (out[id] !== undefined) continue;
    const converted = all[id];
    if (converted === undefined) throw new Error(`schema ${id} was not converted`);
    out[id] = bare(converted);
    const text = JSON.stringify(converted);
    for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) wanted.push(m[1]!);
  }
  return out;
}

/**
 * A request schema whose optional fields read as optional to generators: a field the server fills
 * in when it is absent (a zod `.default()`) keeps its default in its description instead of a
 * `default` keyword, which openapi-typescript (and others) take to mean the field is always there.
 * What the server accepts is unchanged: the field was never in `required`.
 */
function optionalDefaults<T>(node: T): T {
  if (Array.isArray(node)) return node.map(optionalDefaults) as T;
  if (typeof node !== "object" || node === null) return node;
  const out: Json = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, optionalDefaults(v)]));
  const properties = out.properties as Record<string, Json> | undefined;
  const required = (out.required as string[] | undefined) ?? [];
  for (const [name, field] of Object.entries(properties ?? {})) {
    if (required.includes(name) || !("default" in field)) continue;
    const { default: value, description, ...rest } = field;
    const note = `Absent means ${JSON.stringify(value)}.`;
    properties![name] = { ...rest, description: typeof description === "string" ? `${description}. ${note}` : note };
  }
  return out as T;
}

/**
 * Query parameters from an object schema's fields, each shown as the value it decodes to
 * (io: "output"): an integer parameter is `type: integer` with the bounds the route checks.
 */
function queryParameters(schema: z.ZodObject, required: string[] = []): Json[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const json = bare(z.toJSONSchema(field as z.ZodType, { io: "output", unrepresentable: "throw" }) as Json);
    const { description, ...fieldSchema } = json;
    if (typeof description !== "string") throw new Error(`query parameter ${name} has no description`);
    return { name, in: "query", required: required.includes(name), description, schema: fieldSchema };
  });
}

/** The path parameters a `{name}` in an operation's path stands for. */
const PATH_PARAMETERS: Record<string, Json> = {
  id: {
    name: "id", in: "path", required: true,
    description: `a job id: an integer from 1 to ${MAX_JOB_ID}, as decimal digits (ids are strings in every answer)`,
    schema: { type: "string", pattern: "^[1-9][0-9]{0,15}$" },
    example: "42",
  },
  type: { name: "type", in: "path", required: true, description: "a registered job type", schema: { type: "string" }, example: "email" },
};

const json = (schema: z.ZodType, description: string) => ({ description, content: { "application/json": { schema: ref(schema) } } });
const error = (description: string) => json(errorReply, description);
const either = (a: z.ZodType, b: z.ZodType, description: string) => ({
  description, content: { "application/json": { schema: { oneOf: [ref(a), ref(b)] } } },
});
const badId = error("the id is not an integer from 1 to 2^53 − 1 (invalid_id)");
const unavailable = error("the database is unreachable (unavailable); retry later (Retry-After: 1)");
const unavailableWrite = error("the database is unreachable (unavailable), or the write reached it and its answer was lost (outcome_unknown); retry later (Retry-After: 1)");
const noDeadJob = error("no dead job has this id (not_found)");
const badType = error("no type, a malformed one, or an unknown parameter (invalid_request)");

/** Every operation of the API, in the order the document lists them. */
const OPERATIONS: Operation[] = [
  {
    method: "post", path: "/submit", tag: "jobs", operationId: "submit",
    summary: "Submit one job or a batch",
    description:
      `One job, or \`{"jobs":[…]}\` with 1 to ${MAX_BATCH_JOBS} jobs committed all or nothing. ` +
      "The answer comes once the database has committed the jobs. The payload is stored and delivered exactly as sent. " +
      "An `idempotencyKey` already held by a job in the system makes nothing new and answers with that job's id.",
    parameters: [{
      name: "traceparent", in: "header", required: false, schema: { type: "string" },
      description: "W3C trace context: kept with every job of the request and sent on to its handler (the webhook's traceparent header, the pull API's job field, a command's TRACEPARENT); a malformed one is ignored, as the W3C spec asks",
    }],
    requestBody: {
      required: true,
      content: { "application/json": { schema: { oneOf: [ref(jobSchema), ref(batchSchema)] } } },
    },
    responses: {
      "202": either(submitReply, submitBatchReply, "committed (a batch with idempotency keys also lists duplicates)"),
      "200": either(submitReply, submitBatchReply, "every job named one already holding its idempotency key: nothing new was stored"),
      "400": error("invalid JSON (invalid_json) or an invalid field (invalid_request; the message names it)"),
      "413": error("body over --body-limit-bytes (payload_too_large)"),
      "415": error("content type is not application/json"),
      "429": error("the queue is full (queue_full); retry later"),
      "503": error("shutting down (shutting_down), the database is unreachable (unavailable) or overloaded (overloaded): nothing was stored; or outcome_unknown: the jobs may or may not be stored, retry with an idempotencyKey"),
    },
  },
  {
    method: "get", path: "/jobs", tag: "jobs", operationId: "listJobs",
    summary: "List jobs of one state, a page at a time",
    description:
      "Jobs in one `state` (optionally of one `type`) in id order, oldest first or, with `order=newest`, newest first, each shown like GET /jobs/{id}. " +
      `${JOB_PAGE_DEFAULT} a page unless \`limit\` says otherwise (at most ${JOB_PAGE_MAX}); a page also ends once it holds ${JOB_PAGE_MAX_BYTES / 1024 / 1024} MiB of payloads (always at least one job). ` +
      "Pass a page's `next` as `after`, with the same state, type and order, for the following page; `next` is null on the last page. " +
      "Pages are read by id (keyset), so paging never repeats or skips a job that stays in its state; a job that changes state meanwhile may be missed or met again in its new state. " +
      "A type or state with few jobs among many costs the database a scan of that state's table, as GET /stats does.",
    parameters: queryParameters(jobListQuery, ["state"]),
    responses: {
      "200": json(jobPage, "a page of jobs"),
      "400": error("no state, or a bad or unknown query parameter (invalid_request; the message names it)"),
      "503": unavailable,
    },
  },
  {
    method: "get", path: "/jobs/{id}", tag: "jobs", operationId: "getJob",
    summary: "Read a job's state",
    description:
      "A job's state, attempts, last error, flow-control key and payload (exactly as submitted); `waitingFor` says why a pending or scheduled job waits. " +
      "Completed jobs are gone unless the server keeps completed records (--keep-completed).",
    responses: { "200": json(jobView, "the job"), "400": badId, "404": error("unknown, or completed and not kept (not_found)"), "503": unavailable },
  },
  {
    method: "delete", path: "/jobs/{id}", tag: "jobs", operationId: "cancelJob",
    summary: "Cancel a pending, scheduled or running job",
    description:
      "A pending or scheduled job is deleted and never runs (204). A job running in this process has its handler's signal fired; " +
      "its row goes when the handler returns, and it is never retried (202). Dead jobs are deleted with DELETE /dead/{id}.",
    responses: {
      "204": { description: "it was pending or scheduled (or claimed ahead here and still waiting for a worker) and is gone" },
      "202": json(cancelReply, "it is running in this process: its signal fired and its row goes when the handler returns"),
      "400": badId,
      "404": error("unknown, completed or dead (not_found; delete dead jobs with DELETE /dead/{id})"),
      "409": error("running in another process (running_elsewhere): send the cancel there"),
      "503": unavailableWrite,
    },
  },
  {
    method: "post", path: "/claim", tag: "workers", operationId: "claimJobs",
    summary: "Ask for jobs of pull types (long-poll)",
    description:
      `Up to \`max\` (1 to ${CLAIM_MAX}) jobs of the given pull types, most urgent first, in the order and under the flow control every handler gets. ` +
      `Waits up to \`waitMs\` (at most ${CLAIM_WAIT_MAX_MS}) for the first job and answers with what arrived together; an empty list when the wait ends. ` +
      "Each job is leased to the caller until `leaseUntil`: complete, fail or heartbeat it before then, or it is retried (the attempt counts). " +
      "A waiting poll costs no database query while it waits.",
    requestBody: { required: true, content: { "application/json": { schema: ref(claimRequest) } } },
    responses: {
      "200": json(claimReply, "the jobs (an empty list when none came within the wait)"),
      "400": error("invalid JSON (invalid_json), an invalid field (invalid_request), an unknown type (unknown_type) or one that is not a pull type"),
      "413": error("body over --body-limit-bytes (payload_too_large)"),
      "415": error("content type is not application/json"),
      "503": error("shutting down (shutting_down) or the database is unreachable (unavailable)"),
    },
  },
  {
    method: "post", path: "/jobs/{id}/complete", tag: "workers", operationId: "completeJob",
    summary: "Complete a pulled job",
    description:
      "Ends the attempt the lease token names as done. Fenced by the claim: when the job was completed, failed, cancelled or its lease expired, " +
      "the answer is 409 and nothing changes. `result` is kept with the completed record under --keep-completed.",
    requestBody: { required: true, content: { "application/json": { schema: ref(completeRequest) } } },
    responses: {
      "200": json(moveReply, "completed"),
      "400": error("a bad id (invalid_id), invalid JSON (invalid_json), or a missing or malformed leaseToken, or another job's (invalid_request)"),
      "409": error("the claim is gone (lease_lost): the job completed, failed, was cancelled, or its lease expired"),
      "415": error("content type is not application/json"),
      "503": unavailableWrite,
    },
  },
  {
    method: "post", path: "/jobs/{id}/fail", tag: "workers", operationId: "failJob",
    summary: "Fail a pulled job's attempt",
    description:
      "Ends the attempt the lease token names as failed: retried with backoff while attempts are left (`state: scheduled`), else dead; " +
      "`retry: false` dead-letters it now. Fenced by the claim like complete.",
    requestBody: { required: true, content: { "application/json": { schema: ref(failRequest) } } },
    responses: {
      "200": json(moveReply, "where the job went: scheduled for a retry, or dead"),
      "400": error("a bad id (invalid_id), invalid JSON (invalid_json), or an invalid field (invalid_request)"),
      "409": error("the claim is gone (lease_lost)"),
      "415": error("content type is not application/json"),
      "503": unavailableWrite,
    },
  },
  {
    method: "post", path: "/jobs/{id}/heartbeat", tag: "workers", operationId: "heartbeatJob",
    summary: "Extend a pulled job's lease",
    description: "The lease runs `extendMs` from now (default: the server's --lease-ms). Send one well before `leaseUntil`, e.g. every third of the lease. Fenced by the claim like complete.",
    requestBody: { required: true, content: { "application/json": { schema: ref(heartbeatRequest) } } },
    responses: {
      "200": json(heartbeatReply, "the new lease end"),
      "400": error("a bad id (invalid_id), invalid JSON (invalid_json), or an invalid field (invalid_request)"),
      "409": error("the claim is gone (lease_lost)"),
      "415": error("content type is not application/json"),
      "503": unavailableWrite,
    },
  },
  {
    method: "get", path: "/dead", tag: "dead-letters", operationId: "listDead",
    summary: "List dead jobs, a page at a time",
    description:
      `Dead jobs in id order, oldest first or, with \`order=newest\`, newest first, shown like GET /jobs/{id} plus \`failedAt\`: ${DEAD_PAGE_DEFAULT} a page unless \`limit\` says otherwise (at most ${DEAD_PAGE_MAX}). ` +
      `A page also ends once it holds ${DEAD_PAGE_MAX_BYTES / 1024 / 1024} MiB of payloads (always at least one job). ` +
      "Pass a page's `next` as `after`, with the same type and order, for the following page (oldest first: ids above it; newest first: ids below it); `next` is null on the last page.",
    parameters: queryParameters(deadListQuery),
    responses: { "200": json(deadPage, "a page of dead jobs"), "400": error("a bad or unknown query parameter (invalid_request; the message names it)"), "503": unavailable },
  },
  {
    method: "delete", path: "/dead", tag: "dead-letters", operationId: "purgeDead",
    summary: "Delete every dead job of one type",
    description: "Works in chunks of at most 1,000 jobs, one transaction each; after a 503 midway, the chunks done stay done and repeating the request finishes the work.",
    parameters: queryParameters(bulkTypeQuery, ["type"]),
    responses: { "200": json(countReply, "how many were deleted"), "400": badType, "503": unavailableWrite },
  },
  {
    method: "post", path: "/dead/retry", tag: "dead-letters", operationId: "retryDeadType",
    summary: "Retry every dead job of one type",
    description:
      "Every job of the type that was dead when the request came in goes back to pending with attempts 0, due now, keeping its id, payload, priority and maxAttempts. " +
      "Works in chunks of at most 1,000 jobs, one transaction each; repeating the request after a 503 finishes the work.",
    parameters: queryParameters(bulkTypeQuery, ["type"]),
    responses: { "200": json(countReply, "how many are pending again"), "400": badType, "503": unavailableWrite },
  },
  {
    method: "delete", path: "/dead/{id}", tag: "dead-letters", operationId: "deleteDead",
    summary: "Delete one dead job",
    description: "Deletes the dead job for good, releasing its idempotency key. Live jobs are cancelled with DELETE /jobs/{id}.",
    responses: { "204": { description: "deleted" }, "400": badId, "404": noDeadJob, "503": unavailableWrite },
  },
  {
    method: "post", path: "/dead/{id}/retry", tag: "dead-letters", operationId: "retryDead",
    summary: "Retry one dead job",
    description: "Moves the dead job back to pending with attempts 0, due now, its lastError kept, in one transaction. An expired job comes back without its deadline.",
    responses: { "200": json(idReply, "pending again"), "400": badId, "404": noDeadJob, "503": unavailableWrite },
  },
  {
    method: "get", path: "/types", tag: "types", operationId: "listTypes",
    summary: "List the job types",
    description:
      "Every registered job type by name: its policy (timeout, attempts, priority, and flow control when the types file sets it), " +
      "whether it is paused, and its jobs running and waiting on every node. Entries may carry more fields of flow control's live state.",
    responses: { "200": json(typesReply, "the types, by name"), "503": unavailable },
  },
  {
    method: "post", path: "/types/{type}/pause", tag: "types", operationId: "pauseType",
    summary: "Pause a job type on every node",
    description:
      "Its jobs are still accepted and wait; jobs already running finish. The pause is kept in the database, " +
      "so it holds on every node sharing it and survives restarts. Idempotent.",
    responses: { "200": json(pauseReply, "paused"), "404": error("no such job type is registered (not_found)"), "503": unavailableWrite },
  },
  {
    method: "post", path: "/types/{type}/resume", tag: "types", operationId: "resumeType",
    summary: "Resume a paused job type on every node",
    description: "Its waiting jobs become claimable again on every node. Idempotent.",
    responses: { "200": json(pauseReply, "running again"), "404": error("the type is neither registered nor paused (not_found)"), "503": unavailableWrite },
  },
  {
    method: "get", path: "/schedules", tag: "schedules", operationId: "schedules",
    summary: "List the recurring schedules",
    description: "The recurring schedules of the types file: each one's next tick on this node, its last tick on any node, and that tick's job with its state now.",
    responses: { "200": json(schedulesReply, "the schedules"), "503": unavailable },
  },
  {
    method: "get", path: "/stats", tag: "operations", operationId: "stats",
    summary: "Count jobs by state and type",
    description:
      "Job counts by state and type across every process sharing the database, the oldest ready job's age, and this process's completions in the last minute. " +
      "Each call scans the tables: poll every few seconds at most, and use /metrics for dashboards.",
    responses: { "200": json(statsReply, "the numbers"), "503": unavailable },
  },
  {
    method: "get", path: "/stats/history", tag: "operations", operationId: "statsHistory",
    summary: "This node's last 15 minutes, second by second",
    description:
      "A sample every second for the last 15 minutes (at most 900), kept in memory by the answering node: jobs it submitted, completed, failed and " +
      "dead-lettered in each second, its heap's depth (ready, scheduled) and the jobs it ran at that moment, and the mean wait from ready to start. " +
      "Starts empty when the process starts. Cheap: no database query; the dashboard draws its charts from it.",
    responses: { "200": json(historyReply, "the samples, oldest first") },
  },
  {
    method: "get", path: "/admin/backup", tag: "operations", operationId: "backup",
    summary: "Download a consistent copy of the embedded store",
    description:
      "The embedded store's SQLite database file as of the request: every job acknowledged before it, none half-written, " +
      "with ids, idempotency keys, attempt history, paused types and schedules. Writers are held up only for one WAL checkpoint; " +
      "the copy is made on the server's disk and then streamed. Restore it by stopping the server, putting the file in place of " +
      "its --db file (with no -wal file beside it) and starting it again. `jobqueue backup <file>` writes it atomically and checks it. " +
      "A server on PostgreSQL refuses: back that database up with pg_dump.",
    responses: {
      "200": {
        description: "the database file, streamed",
        headers: {
          [BACKUP_BYTES_HEADER]: { description: "the file's length in bytes (the body is streamed, without Content-Length)", schema: { type: "string", pattern: "^[0-9]+$" } },
          [BACKUP_SHA256_HEADER]: { description: "the SHA-256 of the file, in hex, to check it arrived whole", schema: { type: "string", pattern: "^[0-9a-f]{64}$" } },
          "Content-Disposition": { description: "`attachment` with a file name holding the time of the copy", schema: { type: "string" } },
        },
        content: { [BACKUP_MEDIA_TYPE]: { schema: { type: "string", contentMediaType: BACKUP_MEDIA_TYPE } } },
      },
      "409": error("the server keeps its jobs in PostgreSQL (backup_unsupported): back that database up with pg_dump"),
      "503": error("the store is closing or unreachable (unavailable); retry later"),
    },
  },
  {
    method: "get", path: "/metrics", tag: "operations", operationId: "metrics",
    summary: "Prometheus metrics",
    description: "This process's metrics in Prometheus text format 0.0.4. The server's --metrics-public option serves them without the token.",
    responses: { "200": { description: "the metrics", content: { "text/plain": { schema: { type: "string" } } } } },
  },
  {
    method: "get", path: "/health", tag: "operations", operationId: "health",
    summary: "Liveness probe",
    description: "200 while the process is alive. Open without the token and whatever the Host, for orchestrators' probes.",
    responses: { "200": json(statusReply, "alive") },
  },
  {
    method: "get", path: "/ready", tag: "operations", operationId: "ready",
    summary: "Readiness probe",
    description: "200 when the database is reachable, start-up recovery is done and the server is not shutting down. Open without the token and whatever the Host.",
    responses: { "200": json(statusReply, "ready"), "503": error("not ready, with the reason (not_ready)") },
  },
  {
    method: "get", path: "/openapi.json", tag: "operations", operationId: "openapi",
    summary: "This OpenAPI document",
    description:
      "The OpenAPI 3.1 description of this API, generated from the schemas the server validates with. " +
      "It is readable without the token (it holds no data), so client generators can fetch it: " +
      "`npx openapi-typescript http://127.0.0.1:8080/openapi.json -o jobqueue-api.d.ts`.",
    responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } } },
  },
];

/** Whether the token gate lets a request for `path` through without the token. */
const isOpen = (path: string) => ALWAYS_OPEN.has(path);

const unauthorized = {
  description: "the server has a token and the request carries none, or another one (unauthorized)",
  headers: { "WWW-Authenticate": { description: "`Bearer realm=\"jobqueue\"`", schema: { type: "string" } } },
  content: { "application/json": { schema: ref(errorReply) } },
};
const forbiddenHost = "no token is set and the Host is neither a loopback name nor in --allowed-hosts (forbidden_host)";
const forbiddenOrigin = "the request came from another web page: its Origin is not this server (forbidden_origin)";

/** An operation as the document shows it: the gates' answers and its security added to its own. */
function operationObject(op: Operation): Json {
  const gates: Record<string, Json> = {};
  if (!isOpen(op.path)) gates["401"] = unauthorized;
  const stateChanging = STATE_CHANGING.has(op.method.toUpperCase());
  if (!ANY_HOST.has(op.path)) gates["403"] = error(stateChanging ? `${forbiddenHost}, or ${forbiddenOrigin}` : forbiddenHost);
  else if (stateChanging) gates["403"] = error(forbiddenOrigin);
  return {
    tags: [op.tag],
    operationId: op.operationId,
    summary: op.summary,
    description: op.description,
    security: isOpen(op.path) ? [] : [{ [BEARER]: [] }],
    ...(op.parameters !== undefined && { parameters: op.parameters }),
    ...(op.requestBody !== undefined && { requestBody: op.requestBody }),
    responses: { ...op.responses, ...Object.fromEntries(Object.entries(gates).filter(([status]) => op.responses[status] === undefined)) },
  };
}

/** The operations grouped by path, each path with its `{…}` parameters. */
function paths(operations: Operation[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const op of operations) {
    const item = (out[op.path] ??= pathParameters(op.path));
    if (item[op.method] !== undefined) throw new Error(`${op.method.toUpperCase()} ${op.path} is listed twice`);
    item[op.method] = operationObject(op);
  }
  return out;
}

function pathParameters(path: string): Json {
  const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  if (names.length === 0) return {};
  return {
    parameters: names.map((name) => {
      const parameter = PATH_PARAMETERS[name];
      if (parameter === undefined) throw new Error(`no path parameter {${name}} is described (in ${path})`);
      return parameter;
    }),
  };
}

/** `a`, `a and b`, `a, b and c`. */
function listed(words: string[]): string {
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

const DESCRIPTION = `A durable priority job queue: producers submit jobs over HTTP, and the server schedules them by
priority with aging, runs them (webhooks, commands or TypeScript handlers), retries failures with
backoff and keeps what keeps failing in the dead letters.

- Errors are always JSON, \`{"error":{"code":"…","message":"…"}}\`; bad input gets a 4xx whose message
  names the field, and changes nothing.
- Job ids are strings of decimal digits in every answer.
- When the server has a token (JOBQUEUE_TOKEN or --token-file), every operation marked with the
  \`${BEARER}\` scheme needs \`Authorization: Bearer <token>\`. ${listed([...ALWAYS_OPEN].filter((p) => p !== "/ui").map((p) => `\`${p}\``))}
  are always open: this document holds no data, so client generators can fetch it without the token.
- Without a token, only requests whose Host is a loopback name (or one in --allowed-hosts) are
  served; the probes ${listed([...ANY_HOST].map((p) => `\`${p}\``))} answer any Host.`;

/** The whole document. */
export function openApiDocument(): Json {
  const [host, port] = [OPTIONS.host.default, OPTIONS.port.default];
  if (typeof host !== "string" || typeof port !== "string") throw new Error("the server's default address is computed");
  return {
    openapi: "3.1.0",
    info: {
      title: "jobqueue",
      version: pkg.version,
      summary: "A durable priority job queue over HTTP",
      description: DESCRIPTION,
    },
    servers: [
      { url: "/", description: "the server that serves this document" },
      // No descriptions on the variables: the OpenAPI 3.1 schema swagger-parser checks against
      // misspells that field ("descriptions") and refuses it.
      {
        url: "http://{host}:{port}",
        description: "a jobqueue server by address: host is what it listens on (--host) and port its HTTP port (--port); the defaults are the server's own",
        variables: { host: { default: host }, port: { default: port } },
      },
    ],
    security: [{ [BEARER]: [] }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    paths: paths(OPERATIONS),
    components: {
      schemas: { ...optionalDefaults(components(REQUEST_SCHEMAS, "input")), ...components(RESPONSE_SCHEMAS, "output") },
      securitySchemes: {
        [BEARER]: {
          type: "http",
          scheme: "bearer",
          description: "The server's token (JOBQUEUE_TOKEN or --token-file), sent as `Authorization: Bearer <token>`. Needed only when the server has one.",
        },
      },
    },
  };
}
