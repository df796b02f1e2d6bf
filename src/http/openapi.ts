// openapi.ts: the OpenAPI 3.1 document of the HTTP API, generated from the same zod schemas the
// routes validate with (z.toJSONSchema); paths, parameters and status codes are listed here. Builds
// a plain object; serves nothing.
import { z } from "zod";
import pkg from "../../package.json" with { type: "json" };
import {
  DEAD_PAGE_DEFAULT, DEAD_PAGE_MAX, bulkTypeQuery, cancelReply, countReply, deadListQuery, deadPage, errorReply, idReply, jobView,
  pauseReply, schedulesReply, statsReply, statusReply, submitBatchReply, submitReply, typesReply,
} from "./api-schema.ts";
import { batchSchema, jobSchema } from "./submit-schema.ts";

type Json = Record<string, unknown>;

/** Component schemas read as input (request bodies) and as output (responses). */
const REQUEST_SCHEMAS = [jobSchema, batchSchema];
const RESPONSE_SCHEMAS = [
  jobView, deadPage, statsReply, schedulesReply, idReply, countReply, submitReply, submitBatchReply, cancelReply, statusReply, typesReply, pauseReply, errorReply,
];

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

/** Query parameters from an object schema's fields. */
function queryParameters(schema: z.ZodObject, required: string[] = []): Json[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const json = bare(z.toJSONSchema(field as z.ZodType, { io: "input", unrepresentable: "any" }) as Json);
    const { description, ...fieldSchema } = json;
    return { name, in: "query", required: required.includes(name), schema: fieldSchema, ...(description !== undefined && { description }) };
  });
}

const json = (schema: z.ZodType, description: string) => ({ description, content: { "application/json": { schema: ref(schema) } } });
const error = (description: string) => json(errorReply, description);
const idPath = {
  name: "id", in: "path", required: true,
  description: `a job id: an integer from 1 to ${Number.MAX_SAFE_INTEGER}`,
  schema: { type: "string", pattern: "^[1-9][0-9]{0,15}$" },
};
const badId = error("the id is not a positive integer (invalid_id)");
const typePath = { name: "type", in: "path", required: true, description: "a registered job type", schema: { type: "string" } };
const unavailable = error("the database is unreachable (unavailable); retry later");

/** The whole document. `serverUrl` fills `servers` when given. */
export function openApiDocument(serverUrl?: string): Json {
  return {
    openapi: "3.1.0",
    info: {
      title: "jobqueue",
      version: pkg.version,
      description: "A durable priority job queue. Errors are always {\"error\":{\"code\",\"message\"}}.",
    },
    ...(serverUrl !== undefined && { servers: [{ url: serverUrl }] }),
    security: [{ bearer: [] }, {}],
    paths: {
      "/submit": {
        post: {
          operationId: "submit",
          summary: "Submit one job or a batch (all or nothing)",
          requestBody: {
            required: true,
            content: { "application/json": { schema: { oneOf: [ref(jobSchema), ref(batchSchema)] } } },
          },
          responses: {
            "202": {
              description: "committed (a batch with idempotency keys also lists duplicates)",
              content: { "application/json": { schema: { oneOf: [ref(submitReply), ref(submitBatchReply)] } } },
            },
            "200": {
              description: "every job named one already holding its idempotency key: nothing new was stored",
              content: { "application/json": { schema: { oneOf: [ref(submitReply), ref(submitBatchReply)] } } },
            },
            "400": error("invalid JSON (invalid_json) or an invalid field (invalid_request)"),
            "401": error("a token is required"),
            "413": error("body over the size limit"),
            "415": error("content type is not application/json"),
            "429": error("the queue is full (queue_full); retry later"),
            "503": error("shutting down or the database is unreachable; nothing was stored"),
          },
        },
      },
      "/jobs/{id}": {
        parameters: [idPath],
        get: {
          operationId: "getJob",
          summary: "A job's state",
          responses: { "200": json(jobView, "the job"), "400": badId, "404": error("unknown, or completed and not kept"), "503": unavailable },
        },
        delete: {
          operationId: "cancelJob",
          summary: "Cancel a pending, scheduled or running job",
          responses: {
            "204": { description: "it was pending or scheduled and is gone" },
            "202": json(cancelReply, "it is running in this process: its signal fired and its row goes when the handler returns"),
            "400": badId,
            "404": error("unknown, completed or dead (delete dead jobs with DELETE /dead/{id})"),
            "409": error("running in another process (running_elsewhere)"),
            "503": unavailable,
          },
        },
      },
      "/dead": {
        get: {
          operationId: "listDead",
          summary: `Dead jobs in id order, ${DEAD_PAGE_DEFAULT} (at most ${DEAD_PAGE_MAX}) a page`,
          parameters: queryParameters(deadListQuery),
          responses: { "200": json(deadPage, "a page of dead jobs"), "400": error("a bad query parameter (invalid_request)"), "503": unavailable },
        },
        delete: {
          operationId: "purgeDead",
          summary: "Delete every dead job of one type",
          parameters: queryParameters(bulkTypeQuery, ["type"]),
          responses: { "200": json(countReply, "how many were deleted"), "400": error("no or a bad type (invalid_request)"), "503": unavailable },
        },
      },
      "/dead/retry": {
        post: {
          operationId: "retryDeadType",
          summary: "Retry every dead job of one type",
          parameters: queryParameters(bulkTypeQuery, ["type"]),
          responses: { "200": json(countReply, "how many are pending again"), "400": error("no or a bad type (invalid_request)"), "503": unavailable },
        },
      },
      "/dead/{id}": {
        parameters: [idPath],
        delete: {
          operationId: "deleteDead",
          summary: "Delete one dead job",
          responses: { "204": { description: "deleted" }, "400": badId, "404": error("not a dead job"), "503": unavailable },
        },
      },
      "/dead/{id}/retry": {
        parameters: [idPath],
        post: {
          operationId: "retryDead",
          summary: "Move one dead job back to pending (attempts 0, due now)",
          responses: { "200": json(idReply, "pending again"), "400": badId, "404": error("not a dead job"), "503": unavailable },
        },
      },
      "/stats": {
        get: {
          operationId: "stats",
          summary: "Job counts by state and type, the oldest ready job's age, recent completions",
          responses: { "200": json(statsReply, "the numbers"), "503": unavailable },
        },
      },
      "/schedules": {
        get: {
          operationId: "schedules",
          summary: "The recurring schedules of the types file: each one's next tick here, its last tick anywhere, and that tick's job",
          responses: { "200": json(schedulesReply, "the schedules"), "503": unavailable },
        },
      },
      "/types": {
        get: {
          operationId: "listTypes",
          summary: "Every registered job type: its policy, whether it is paused, its jobs running and waiting",
          responses: { "200": json(typesReply, "the types, by name"), "503": unavailable },
        },
      },
      "/types/{type}/pause": {
        parameters: [typePath],
        post: {
          operationId: "pauseType",
          summary: "Pause a type on every node: its jobs are accepted and wait; running ones finish (idempotent)",
          responses: { "200": json(pauseReply, "paused"), "404": error("no such job type is registered (not_found)"), "503": unavailable },
        },
      },
      "/types/{type}/resume": {
        parameters: [typePath],
        post: {
          operationId: "resumeType",
          summary: "Resume a paused type on every node (idempotent)",
          responses: { "200": json(pauseReply, "running again"), "404": error("no such job type is registered (not_found)"), "503": unavailable },
        },
      },
      "/health": {
        get: { operationId: "health", summary: "Liveness", security: [], responses: { "200": json(statusReply, "alive") } },
      },
      "/ready": {
        get: {
          operationId: "ready",
          summary: "Readiness: the database is reachable, start-up is done, not shutting down",
          security: [],
          responses: { "200": json(statusReply, "ready"), "503": error("not ready, with the reason (not_ready)") },
        },
      },
      "/metrics": {
        get: {
          operationId: "metrics",
          summary: "Prometheus text format 0.0.4",
          responses: { "200": { description: "the metrics", content: { "text/plain": { schema: { type: "string" } } } } },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openapi",
          summary: "This document",
          responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } } },
        },
      },
    },
    components: {
      schemas: { ...components(REQUEST_SCHEMAS, "input"), ...components(RESPONSE_SCHEMAS, "output") },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "required on every endpoint but /health and /ready when the server has a token" },
      },
    },
  };
}
