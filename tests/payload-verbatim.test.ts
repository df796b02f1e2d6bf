// payload-verbatim.test.ts: a payload reaches every reader exactly as the producer sent it, on both
// stores: a real server with the real webhook handler (a real receiver records the bytes it got),
// the real command handler (a shell writes its stdin to a file), GET /jobs/:id and GET /dead.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createExecHandler } from "../src/handlers/exec.ts";
import { createWebhookHandler } from "../src/handlers/webhook.ts";
import { STORE_KINDS } from "./support/queues.ts";
import { startReceiver, type Receiver } from "./support/receiver.ts";
import { startTestServer, type TestServer } from "./support/test-server.ts";
import { waitFor } from "./support/wait.ts";

/**
 * Texts JSON.parse + JSON.stringify would change: a number past 2^53, 1.0, a number no double holds
 * (JSON.parse reads 1e400 as Infinity, which JSON.stringify writes as null: it is still valid JSON,
 * so it is kept), odd spaces, escapes, and a member order and spelling of our choosing.
 */
const PAYLOADS = [
  '{ "mode" : "fail",\n\t"n": 9007199254740993, "f": 1.0, "big": 1e400, "tiny": -5e-400,\r\n "u": "\\u00e9\\ud83d\\ude80\\/", "raw": "é🚀" ,"z":[ ] }',
  '{"mode":"fail","neg0":-0,"exp":1E+2,"list":[1.50, 2.000e0 ,3]}',
];
/** A payload with no "mode" is an "ok" delivery for the receiver. */
const OK_PAYLOAD = '[ 9007199254740993 , 1.0,"\\u0000" ]';

for (const kind of STORE_KINDS) {
  describe(`on ${kind}`, () => {
    let receiver: Receiver;
    let s: TestServer;
    let dir: string;
    beforeAll(async () => {
      receiver = startReceiver({ keepBodies: true });
      dir = await mkdtemp(join(tmpdir(), "jq-verbatim-"));
      s = await startTestServer({
        store: kind,
        args: ["--workers", "4", "--backoff-base-ms", "1", "--backoff-cap-ms", "5"],
        handlers: {
          hook: createWebhookHandler({ url: receiver.url }),
          cmd: createExecHandler({ command: ["/bin/sh", "-c", `cat > '${dir}'/"$JOBQUEUE_JOB_ID".json`] }),
        },
      });
    });
    afterAll(async () => {
      await s.stop();
      receiver.stop();
      await rm(dir, { recursive: true, force: true });
    });

    async function submit(body: string): Promise<{ id?: string; ids?: string[] }> {
      const res = await fetch(`${s.server.url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(202);
      return (await res.json()) as { id?: string; ids?: string[] };
    }
    const getText = async (path: string) => {
      const res = await fetch(`${s.server.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("application/json");
      return res.text();
    };

    test("the webhook receiver, GET /jobs/:id and GET /dead get the exact text of each payload", async () => {
      const { id } = await submit(`{"type":"hook","maxAttempts":2,"payload":  ${PAYLOADS[0]}  }`);
      const { ids } = await submit(`{"jobs":[{"type":"hook","maxAttempts":2,"payload":${PAYLOADS[1]}},{"type":"hook","payload":${OK_PAYLOAD}}]}`);
      const sent = [[id!, PAYLOADS[0]!], [ids![0]!, PAYLOADS[1]!]] as const;

      // The failing ones: both attempts delivered verbatim, then dead.
      for (const [jobId, payload] of sent) {
        await waitFor(async () => (await fetch(`${s.server.url}/jobs/${jobId}`).then((r) => r.json()) as { state: string }).state === "dead", { what: `job ${jobId} dead` });
        const d = receiver.deliveries.get(jobId)!;
        expect(d.bodies).toEqual([1, 2].map((attempt) => `{"id":"${jobId}","type":"hook","payload":${payload},"attempt":${attempt},"maxAttempts":2}`));
        const view = await getText(`/jobs/${jobId}`);
        expect(view.endsWith(`,"payload":${payload}}`)).toBe(true);
        expect(JSON.parse(view)).toMatchObject({ id: jobId, state: "dead", attempts: 2 });
      }
      const dead = await getText("/dead?type=hook");
      expect(dead).toContain(`,"payload":${PAYLOADS[0]}}`);
      expect(dead).toContain(`,"payload":${PAYLOADS[1]}}`);
      expect((JSON.parse(dead) as { jobs: { id: string }[] }).jobs.map((j) => j.id)).toEqual([id!, ids![0]!]);

      // The one that succeeded, once.
      await waitFor(() => receiver.deliveries.get(ids![1]!)?.succeeded, { what: "the ok job delivered" });
      expect(receiver.deliveries.get(ids![1]!)!.bodies).toEqual([`{"id":"${ids![1]}","type":"hook","payload":${OK_PAYLOAD},"attempt":1,"maxAttempts":5}`]);
    });

    test("a command gets the exact text of its payload on stdin", async () => {
      const { id } = await submit(`{"type":"cmd","payload":${PAYLOADS[0]}}`);
      const file = join(dir, `${id}.json`);
      // The job is gone from the store once the command exited 0 and its completion committed.
      await waitFor(async () => (await fetch(`${s.server.url}/jobs/${id}`)).status === 404, { what: "the command job done" });
      expect(await readFile(file, "utf8")).toBe(`{"id":"${id}","type":"cmd","payload":${PAYLOADS[0]},"attempt":1,"maxAttempts":5}`);
    });

    test("a job without a payload is delivered with null", async () => {
      const { id } = await submit('{"type":"hook","payload":null,"maxAttempts":1}');
      const { id: none } = await submit('{"type":"hook","maxAttempts":1}');
      for (const jobId of [id!, none!]) {
        await waitFor(() => receiver.deliveries.get(jobId)?.succeeded, { what: `job ${jobId} delivered` });
        expect(receiver.deliveries.get(jobId)!.bodies[0]).toBe(`{"id":"${jobId}","type":"hook","payload":null,"attempt":1,"maxAttempts":1}`);
      }
    });
  });
}
