// openapi.test.ts: GET /openapi.json is a valid OpenAPI 3.1 document (checked by swagger-parser),
// covers every route, documents the same fields the validators accept and the same gates the
// server has, and real answers from a running queue match the response schemas it documents
// (checked with Ajv, JSON Schema 2020-12). openapi-tools.test.ts runs third-party tools on it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";
import { bearerGate } from "../src/http/auth.ts";
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
      "/jobs": ["get"],
      "/jobs/{id}": ["delete", "get"],
      "/claim": ["post"],
      "/jobs/{id}/complete": ["post"],
      "/jobs/{id}/fail": ["post"],
      "/jobs/{id}/heartbeat": ["post"],
      "/dead": ["delete", "get"],
      "/dead/retry": ["post"],
      "/dead/{id}": ["delete"],
      "/dead/{id}/retry": ["post"],
      "/stats": ["get"],
      "/stats/history": ["get"],
      "/schedules": ["get"],
      "/types": ["get"],
      "/types/{type}/pause": ["post"],
      "/types/{type}/resume": ["post"],
      "/health": ["get"],
      "/ready": ["get"],
      "/admin/backup": ["get"],
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
    expect(dead).toEqual([["type", false], ["order", false], ["after", false], ["limit", false]]);
    const jobs = doc.paths["/jobs"].get.parameters.map((p: { name: string; required: boolean }) => [p.name, p.required]);
    expect(jobs).toEqual([["state", true], ["type", false], ["order", false], ["after", false], ["limit", false]]);
    expect(doc.paths["/jobs"].get.parameters[0].schema).toEqual({ type: "string", enum: ["pending", "scheduled", "inflight", "dead", "completed"] });
    await q.shutdown(1000);
  });

  test("real answers match the response schemas the document gives for them", async () => {
    const q = await startQueue(site.open(), { noop: () => {}, doomed: () => { throw new Error("no"); }, hold: (_j, s) => new Promise((r) => s.addEventListener("abort", () => r(undefined))), pulled: { pull: true } }, {
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
    const newest = await call(q, "GET", "/dead?order=newest&limit=1");
    check("/dead", "get", newest.status, newest.body);
    for (const state of ["pending", "scheduled", "inflight", "dead", "completed"]) {
      const listed = await call(q, "GET", `/jobs?state=${state}&order=newest&limit=2`);
      check("/jobs", "get", listed.status, listed.body);
    }
    const badList = await call(q, "GET", "/jobs?state=gone");
    check("/jobs", "get", badList.status, badList.body);
    const stats = await call(q, "GET", "/stats");
    check("/stats", "get", stats.status, stats.body);
    const history = await waitFor(async () => {
      const r = await call(q, "GET", "/stats/history");
      return r.body.start !== null ? r : null;
    }, { what: "a sample in the history" });
    check("/stats/history", "get", history.status, history.body);
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
    // The pull workers' routes.
    const pulledIds = (await call(q, "POST", "/submit", { jobs: [{ type: "pulled", payload: { a: 1 }, key: "k" }, { type: "pulled" }] })).body.ids as string[];
    const claimed = await call(q, "POST", "/claim", { types: ["pulled"], max: 2, waitMs: 5000 });
    check("/claim", "post", claimed.status, claimed.body);
    expect(claimed.body.jobs.map((j: { id: string }) => j.id).sort()).toEqual([...pulledIds].sort());
    const [first, second] = claimed.body.jobs as { id: string; leaseToken: string }[];
    const beat = await call(q, "POST", `/jobs/${first!.id}/heartbeat`, { leaseToken: first!.leaseToken });
    check("/jobs/{id}/heartbeat", "post", beat.status, beat.body);
    const done = await call(q, "POST", `/jobs/${first!.id}/complete`, { leaseToken: first!.leaseToken, result: "ok" });
    check("/jobs/{id}/complete", "post", done.status, done.body);
    const gone = await call(q, "POST", `/jobs/${first!.id}/complete`, { leaseToken: first!.leaseToken });
    check("/jobs/{id}/complete", "post", gone.status, gone.body);
    const failed = await call(q, "POST", `/jobs/${second!.id}/fail`, { leaseToken: second!.leaseToken, error: "no", retry: false });
    check("/jobs/{id}/fail", "post", failed.status, failed.body);
    const badClaim = await call(q, "POST", "/claim", { types: ["noop"] });
    check("/claim", "post", badClaim.status, badClaim.body);
    const empty = await call(q, "POST", "/claim", { types: ["pulled"] });
    check("/claim", "post", empty.status, empty.body);
    await q.shutdown(1000);
  });

  test("every operation has one declared tag, a summary, a description and a unique operationId, and every parameter a description", async () => {
    const q = await startQueue(site.open(), { noop: () => {} });
    const doc = (await call(q, "GET", "/openapi.json")).body;
    await q.shutdown(1000);
    const tags = new Set((doc.tags as { name: string; description: string }[]).map((t) => t.name));
    const ids = operations(doc).map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { label, op, parameters } of operations(doc)) {
      expect({ label, tags: op.tags.filter((t: string) => tags.has(t)).length }).toEqual({ label, tags: 1 });
      for (const field of ["operationId", "summary", "description"]) expect({ label, field, ok: typeof op[field] === "string" && op[field] !== "" }).toEqual({ label, field, ok: true });
      for (const p of parameters) expect({ label, parameter: p.name, described: typeof p.description === "string" && p.description !== "" }).toEqual({ label, parameter: p.name, described: true });
    }
    expect(doc.info.description).toContain("/openapi.json");
    expect(doc.servers.length).toBeGreaterThan(0);
  });

  test("a request schema has no `default` on a field it leaves out of `required`: generators keep such fields optional", async () => {
    const q = await startQueue(site.open(), { noop: () => {} });
    const doc = (await call(q, "GET", "/openapi.json")).body;
    await q.shutdown(1000);
    const defaults: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (typeof node !== "object" || node === null) return;
      const { properties, required = [] } = node as { properties?: Record<string, object>; required?: string[] };
      for (const [name, field] of Object.entries(properties ?? {})) if ("default" in field && !required.includes(name)) defaults.push(`${at}.${name}`);
      for (const [key, value] of Object.entries(node)) walk(value, `${at}/${key}`);
    };
    for (const id of ["SubmitJob", "SubmitBatch"]) walk(doc.components.schemas[id], id);
    expect(defaults).toEqual([]);
    expect(doc.components.schemas.SubmitJob.properties.payload.description).toContain("Absent means null");
  });

  test("gated operations need the bearer token and document 401; the ones the gate leaves open need none", async () => {
    const q = await startQueue(site.open(), { noop: () => {} });
    const doc = (await call(q, "GET", "/openapi.json")).body;
    const gate = bearerGate({ token: "a-token-of-sixteen-or-more", metricsPublic: false, fetch: (req) => q.app.fetch(req) });
    const open: string[] = [];
    for (const { label, method, path, op } of operations(doc)) {
      const res = await gate(new Request(`http://127.0.0.1${fillPath(path)}`, { method: method.toUpperCase() }));
      const gated = res.status === 401;
      if (!gated) open.push(label);
      expect({ label, security: op.security }).toEqual({ label, security: gated ? [{ bearer: [] }] : [] });
      if (gated) expect({ label, unauthorized: op.responses["401"]?.content?.["application/json"]?.schema }).toEqual({ label, unauthorized: { $ref: "#/components/schemas/Error" } });
      else expect({ label, unauthorized: op.responses["401"] }).toEqual({ label, unauthorized: undefined });
    }
    expect(open.sort()).toEqual(["GET /health", "GET /openapi.json", "GET /ready"]);
    expect(doc.paths["/openapi.json"].get.description).toContain("without the token");
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    await q.shutdown(1000);
  });

  test("every operation but the two probes documents a 4xx answer", async () => {
    const q = await startQueue(site.open(), { noop: () => {} });
    const doc = (await call(q, "GET", "/openapi.json")).body;
    await q.shutdown(1000);
    const without = operations(doc).filter(({ op }) => !Object.keys(op.responses).some((status) => /^4\d\d$/.test(status))).map(({ label }) => label);
    expect(without.sort()).toEqual(["GET /health", "GET /ready"]);
  });

  test("integer query parameters: the server accepts the bounds the document gives and refuses one past either with a 400 naming the parameter", async () => {
    const q = await startQueue(site.open(), { noop: () => {} });
    try {
      const doc = (await call(q, "GET", "/openapi.json")).body;
      const checked: string[] = [];
      for (const { label, method, path, parameters } of operations(doc)) {
        const query = parameters.filter((p) => p.in === "query");
        for (const p of query.filter((p) => p.schema.type === "integer")) {
          const { minimum, maximum } = p.schema as { minimum: number; maximum: number };
          expect(Number.isSafeInteger(minimum) && Number.isSafeInteger(maximum)).toBe(true);
          const others = query.filter((o) => o.required && o !== p).map((o) => `${o.name}=${o.schema.enum?.[0] ?? "noop"}`);
          const send = async (value: number) => {
            const res = await q.app.request(`${fillPath(path)}?${[...others, `${p.name}=${value}`].join("&")}`, { method: method.toUpperCase() });
            return { status: res.status, type: res.headers.get("content-type"), body: await res.json() as { error?: { code: string; message: string } } };
          };
          for (const value of [minimum, maximum]) {
            const r = await send(value);
            expect({ label, [p.name]: value, status: r.status }).toEqual({ label, [p.name]: value, status: 200 });
          }
          for (const value of [minimum - 1, maximum + 1]) {
            const r = await send(value);
            expect({ label, [p.name]: value, status: r.status, code: r.body.error?.code }).toEqual({ label, [p.name]: value, status: 400, code: "invalid_request" });
            expect(r.type).toContain("application/json");
            expect(r.body.error!.message).toStartWith(`${p.name}: `);
          }
          checked.push(`${label} ${p.name} ${minimum}..${maximum}`);
        }
      }
      expect(checked).toEqual([
        "GET /jobs after 0..9007199254740991", "GET /jobs limit 1..500", "GET /dead after 0..9007199254740991", "GET /dead limit 1..500",
      ]);
    } finally {
      await q.shutdown(1000);
    }
  });
});

type Parameter = { name: string; in: string; required?: boolean; description?: string; schema: { type?: string; enum?: string[]; minimum?: number; maximum?: number } };

/** Every operation of a document, with its path's parameters and its own. */
function operations(doc: any): { label: string; method: string; path: string; op: any; parameters: Parameter[] }[] {
  return Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item).filter(([key]) => key !== "parameters").map(([method, op]) => ({
      label: `${method.toUpperCase()} ${path}`, method, path, op, parameters: [...(item.parameters ?? []), ...(op.parameters ?? [])],
    })));
}

/** A path template with its parameters filled in: a job id, a job type. */
function fillPath(path: string): string {
  return path.replace("{id}", "1").replace("{type}", "noop");
}
