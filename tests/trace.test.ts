// trace.test.ts: W3C trace context. A traceparent header on submit is kept with every job of the
// request, through retries and dead-lettering, and handed on: webhook deliveries carry it, pull
// workers get it, commands see TRACEPARENT, library handlers read ctx.traceparent; a malformed one is
// ignored. On both stores, through the real queue and its app.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createExecHandler } from "../src/handlers/exec.ts";
import { createWebhookHandler } from "../src/handlers/webhook.ts";
import { traceparentOf } from "../src/http/submit.ts";
import { STORE_KINDS, call, startQueue, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

const TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

test("a traceparent is kept only when it is well-formed", () => {
  expect(traceparentOf(TRACE)).toBe(TRACE);
  expect(traceparentOf(` ${TRACE} `)).toBe(TRACE);
  expect(traceparentOf("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")).toBe("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future");
  for (const bad of [undefined, "", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    `${TRACE}-extra`, "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "x".repeat(600)]) {
    expect(traceparentOf(bad)).toBeNull();
  }
});

for (const kind of STORE_KINDS) {
  describe(`trace context on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    let q: TestQueue;
    let target: ReturnType<typeof Bun.serve>;
    const seen: { id: string; traceparent: string | null; attempt: string }[] = [];
    const contexts: (string | null)[] = [];
    beforeAll(async () => {
      target = Bun.serve({
        port: 0,
        fetch(req) {
          const attempt = req.headers.get("x-job-attempt")!;
          seen.push({ id: req.headers.get("x-job-id")!, traceparent: req.headers.get("traceparent"), attempt });
          return new Response(null, { status: attempt === "1" ? 500 : 200 });
        },
      });
      site = await storeSite(kind);
      q = await startQueue(site.open(), {
        hook: createWebhookHandler({ url: `http://127.0.0.1:${target.port}/` }),
        lib: (job) => void contexts.push(job.traceparent),
        cmd: { handler: createExecHandler({ command: ["sh", "-c", 'printf "%s" "$TRACEPARENT"'], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } }), policy: {} },
        pulled: { pull: true },
        doomed: () => { throw new Error("no"); },
      }, { keepCompletedMs: 60_000, backoff: { baseMs: 1, capMs: 1 } });
    });
    afterAll(async () => {
      await q.shutdown(1000);
      await site.drop();
      target.stop(true);
    });

    const submit = async (body: unknown, traceparent?: string) => {
      const res = await q.app.request("/submit", {
        method: "POST", body: JSON.stringify(body),
        headers: { "content-type": "application/json", ...(traceparent !== undefined && { traceparent }) },
      });
      expect(res.status).toBe(202);
      return (await res.json()) as { id?: string; ids?: string[] };
    };
    const state = (id: string, want: string) => waitFor(async () => {
      const job = (await call(q, "GET", `/jobs/${id}`)).body;
      return job.state === want ? job : null;
    }, { what: `job ${id} ${want}` });

    test("webhook deliveries carry it on every attempt, and GET /jobs/:id shows it", async () => {
      const later = await submit({ type: "hook", delayMs: 60_000 }, TRACE);
      expect((await call(q, "GET", `/jobs/${later.id}`)).body).toMatchObject({ state: "scheduled", traceparent: TRACE });
      expect(await call(q, "DELETE", `/jobs/${later.id}`)).toMatchObject({ status: 204 });
      const { id } = await submit({ type: "hook" }, TRACE);
      await waitFor(() => seen.filter((s) => s.id === id).length === 2, { what: "two deliveries" });
      expect(seen.filter((s) => s.id === id).map((s) => s.traceparent)).toEqual([TRACE, TRACE]);
    });

    test("every job of a batch gets it, library handlers and commands read it, and a dead job keeps it", async () => {
      const { ids } = await submit({ jobs: [{ type: "lib" }, { type: "cmd" }, { type: "doomed", maxAttempts: 1 }] }, TRACE);
      await waitFor(() => contexts.length === 1, { what: "the library handler" });
      expect(contexts).toEqual([TRACE]);
      expect((await state(ids![1]!, "completed")).result).toBe(TRACE);
      expect((await state(ids![2]!, "dead")).traceparent).toBe(TRACE);
    });

    test("pull workers get it, and a malformed header is ignored", async () => {
      await submit({ type: "pulled", payload: { n: 1 } }, TRACE);
      await submit({ type: "pulled", payload: { n: 2 } }, "00-nope-01");
      const jobs = (await call(q, "POST", "/claim", { types: ["pulled"], max: 2, waitMs: 5000 })).body.jobs as Array<Record<string, unknown>>;
      expect(jobs.map((j) => [(j.payload as { n: number }).n, j.traceparent])).toEqual([[1, TRACE], [2, undefined]]);
      for (const j of jobs) expect((await call(q, "POST", `/jobs/${j.id}/complete`, { leaseToken: j.leaseToken })).status).toBe(200);
    });
  });
}
