// attempt-history.test.ts: every attempt that does not complete a job is on record through the real
// queue, its HTTP API and real handlers: a webhook's status, a command's exit code, a timeout, a
// throttle; a dead job's story; a kept completed record ending with the completing attempt's node
// and duration. On both stores.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createExecHandler } from "../src/handlers/exec.ts";
import { createWebhookHandler } from "../src/handlers/webhook.ts";
import { STORE_KINDS, call, startQueue, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

for (const kind of STORE_KINDS) {
  describe(`attempt history on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    let q: TestQueue;
    let target: ReturnType<typeof Bun.serve>;
    /** Answers per job id, in order; 200 once they run out. */
    const answers = new Map<string, number[]>();
    beforeAll(async () => {
      target = Bun.serve({
        port: 0,
        fetch(req) {
          const id = req.headers.get("x-job-id")!;
          const status = answers.get(id)?.shift() ?? 200;
          return new Response(status === 200 ? "ok" : `nope ${status}`, { status, headers: status === 429 ? { "retry-after": "0" } : {} });
        },
      });
      site = await storeSite(kind);
      q = await startQueue(site.open(), {
        hook: { handler: createWebhookHandler({ url: `http://127.0.0.1:${target.port}/` }), policy: { maxAttempts: 4 } },
        cmd: { handler: createExecHandler({ command: ["sh", "-c", "echo broken >&2; exit 3"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } }), policy: { maxAttempts: 2 } },
        slow: { handler: (_job, signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))), policy: { maxAttempts: 1, timeoutMs: 50 } },
      }, { keepCompletedMs: 60_000, nodeId: `hist-${kind}` });
    });
    afterAll(async () => {
      await q.shutdown(1000);
      await site.drop();
      target.stop(true);
    });

    const submit = async (body: unknown) => (await call(q, "POST", "/submit", body)).body.id as string;
    const settled = (id: string, state: string) =>
      waitFor(async () => {
        const job = (await call(q, "GET", `/jobs/${id}`)).body;
        return job.state === state ? job : null;
      }, { what: `job ${id} ${state}` });

    test("a webhook's failures, throttle and final success are each on record, with statuses, node and times", async () => {
      const id = await submit({ type: "hook", payload: {} });
      answers.set(id, [500, 429, 502]);
      const job = await settled(id, "completed");
      const history = job.attemptHistory as Array<Record<string, unknown>>;
      expect(history.map((a) => [a.attempt, a.outcome, a.status])).toEqual([
        [1, "failed", 500], [2, "throttled", 429], [2, "failed", 502], [3, "completed", null],
      ]);
      for (const a of history) {
        expect(a.node).toBe(`hist-${kind}`);
        expect(Date.parse(a.endedAt as string)).toBeGreaterThanOrEqual(Date.parse(a.startedAt as string));
        expect(a.durationMs).toBe(Date.parse(a.endedAt as string) - Date.parse(a.startedAt as string));
      }
      expect(history[0]!.error).toBe("webhook answered 500: nope 500");
      expect(job.attempts).toBe(3);
    });

    test("a command's exit code and a timeout are on record, and a dead job shows the story that led there", async () => {
      const cmd = await submit({ type: "cmd", payload: {} });
      const dead = await settled(cmd, "dead");
      expect(dead.attemptHistory.map((a: { attempt: number; exitCode: number; outcome: string }) => [a.attempt, a.outcome, a.exitCode]))
        .toEqual([[1, "failed", 3], [2, "failed", 3]]);
      expect(dead.attemptHistory[1].error).toContain("broken");
      const page = (await call(q, "GET", "/dead?type=cmd")).body;
      expect(page.jobs[0].attemptHistory).toHaveLength(2);

      const slow = await submit({ type: "slow", payload: {} });
      const timedOut = await settled(slow, "dead");
      expect(timedOut.attemptHistory).toMatchObject([{ attempt: 1, outcome: "timeout", error: "timed out after 50 ms", status: null, exitCode: null }]);
    });

    test("a job that completes at its first attempt has no record but the kept completion", async () => {
      const id = await submit({ type: "hook", payload: {} });
      const job = await settled(id, "completed");
      expect(job.attemptHistory).toMatchObject([{ attempt: 1, outcome: "completed", node: `hist-${kind}`, error: null }]);
    });
  });
}
