// openapi.test.ts: GET /openapi.json is a valid OpenAPI 3.1 document (checked by swagger-parser),
// covers every route, documents the same fields the validators accept, and real answers from a
// running queue match the response schemas it documents (checked with Ajv, JSON Schema 2020-12).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";
import { jobSchema } from "../src/http/submit-schema.ts";
import { STORE_KINDS, call, startQueue, storeSite } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const kind = STORE_KINDS[0]!;

describe("the OpenAPI document", () => {
  let site: Awaited<ReturnType<typeof storeSite>>;
  beforeAll(async () => {
    site = await storeSite(kind);
  });
  afterAll(async () => {
    await site.drop();
  });

  test("is served at /openapi.json and passes an OpenAPI 3.1 validator", async () => {
    const q = await startQueue(site.open(), { noop: () => {} });
    try {
      const res = await call(q, "GET", "/openapi.json");
      expect(res.status).toBe(200);
      expect(res.body.openapi).toBe("3.1.0");
      await SwaggerParser.validate(structuredClone(res.body));
    } finally {
      await q.shutdown(1000);
    }
  });

  test("lists every route with its methods, and the submit fields the validator accepts", async () => {
    const q = await startQueue(site.open(), { noop: () => {} });
    const doc = (await call(q, "GET", "/openapi.json")).body;
    const methods = Object.fromEntries(Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .map(([path, item]) => [path, Object.keys(item).filter((k) => k !== "parameters").sort()]));
    expect(methods).toEqual({
      "/submit": ["post"],
      "/jobs/{id}": ["delete", "get"],
      "/dead": ["delete", "get"],
      "/dead/retry": ["post"],
      "/dead/{id}": ["delete"],
      "/dead/{id}/retry": ["post"],
      "/stats": ["get"],
      "/schedules": ["get"],
      "/types": ["get"],
      "/types/{type}/pause": ["post"],
      "/types/{type}/resume": ["post"],
      "/health": ["get"],
      "/ready": ["get"],
      "/metrics": ["get"],
      "/openapi.json": ["get"],
    });
    const submitJob = doc.components.schemas.SubmitJob;
    expect(Object.keys(submitJob.properties).sort()).toEqual(Object.keys(jobSchema.shape).sort());
    expect(submitJob.additionalProperties).toBe(false);
    expect(submitJob.required).toEqual(["type"]);
    expect(submitJob.properties.priority).toEqual({ type: "integer", minimum: 0, maximum: 100 });
    expect(doc.components.schemas.SubmitBatch.properties.jobs).toMatchObject({ minItems: 1, maxItems: 1000, items: { $ref: "#/components/schemas/SubmitJob" } });
    const dead = doc.paths["/dead"].get.parameters.map((p: { name: string; required: boolean }) => [p.name, p.required]);
    expect(dead).toEqual([["type", false], ["after", false], ["limit", false]]);
    await q.shutdown(1000);
  });

  test("real answers match the response schemas the document gives for them", async () => {
    const q = await startQueue(site.open(), { noop: () => {}, doomed: () => { throw new Error("no"); }, hold: (_j, s) => new Promise((r) => s.addEventListener("abort", () => r(undefined))) }, {
      keepCompletedMs: 60_000, schedules: [{ name: "nightly", type: "noop", cron: "0 3 * * *", timezone: "Europe/Berlin", payload: "{}", catchUp: "last" }],
    });
    const doc = (await call(q, "GET", "/openapi.json")).body;
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    for (const [id, schema] of Object.entries(doc.components.schemas as Record<string, object>)) ajv.addSchema(schema, `#/components/schemas/${id}`);
    const check = (path: string, method: string, status: number, body: unknown) => {
      const response = doc.paths[path][method].responses[String(status)];
      expect(response).toBeDefined();
      const schema = response.content?.["application/json"]?.schema;
      if (schema === undefined) return expect(body).toBeNull();
      const validate = ajv.compile({ ...schema, $defs: undefined });
      if (!validate(body)) throw new Error(`${method.toUpperCase()} ${path} ${status}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body)}`);
    };
    const submitted = await call(q, "POST", "/submit", { type: "noop", idempotencyKey: "k" });
    check("/submit", "post", submitted.status, submitted.body);
    const dup = await call(q, "POST", "/submit", { type: "noop", idempotencyKey: "k" });
    check("/submit", "post", dup.status, dup.body);
    const batch = await call(q, "POST", "/submit", { jobs: [{ type: "doomed", maxAttempts: 1 }, { type: "hold" }] });
    check("/submit", "post", batch.status, batch.body);
    const [doomed, held] = batch.body.ids as string[];
    await waitFor(async () => (await call(q, "GET", `/jobs/${doomed}`)).body.state === "dead", { what: "dead" });
    await waitFor(async () => (await call(q, "GET", `/jobs/${submitted.body.id}`)).body.state === "completed", { what: "completed" });
    for (const id of [doomed, held, submitted.body.id]) {
      const r = await call(q, "GET", `/jobs/${id}`);
      check("/jobs/{id}", "get", r.status, r.body);
    }
    const missing = await call(q, "GET", "/jobs/999999");
    check("/jobs/{id}", "get", missing.status, missing.body);
    const bad = await call(q, "POST", "/submit", { type: "noop", priority: 101 });
    check("/submit", "post", bad.status, bad.body);
    const page = await call(q, "GET", "/dead?limit=1");
    check("/dead", "get", page.status, page.body);
    const stats = await call(q, "GET", "/stats");
    check("/stats", "get", stats.status, stats.body);
    const schedules = await call(q, "GET", "/schedules");
    check("/schedules", "get", schedules.status, schedules.body);
    expect(schedules.body.schedules).toHaveLength(1);
    const retried = await call(q, "POST", `/dead/${doomed}/retry`);
    check("/dead/{id}/retry", "post", retried.status, retried.body);
    const count = await call(q, "POST", "/dead/retry?type=doomed");
    check("/dead/retry", "post", count.status, count.body);
    const paused = await call(q, "POST", "/types/doomed/pause");
    check("/types/{type}/pause", "post", paused.status, paused.body);
    const types = await call(q, "GET", "/types");
    check("/types", "get", types.status, types.body);
    const resumed = await call(q, "POST", "/types/doomed/resume");
    check("/types/{type}/resume", "post", resumed.status, resumed.body);
    const unknownType = await call(q, "POST", "/types/nope/pause");
    check("/types/{type}/pause", "post", unknownType.status, unknownType.body);
    const cancelled = await call(q, "DELETE", `/jobs/${held}`);
    check("/jobs/{id}", "delete", cancelled.status, cancelled.body);
    for (const path of ["/health", "/ready"]) {
      const r = await call(q, "GET", path);
      check(path, "get", r.status, r.body);
    }
    await q.shutdown(1000);
  });
});
