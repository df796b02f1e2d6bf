// webhook-signing.test.ts: Standard Webhooks signatures. The headers a signed webhook sends are
// checked with the standardwebhooks package (a third-party verifier, not our code), on real
// deliveries from a running queue to a real receiver, and the Python verifier printed in
// docs/security.md is run against one of them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { parseTypesConfig } from "../src/config/types-file.ts";
import { registryFromTypes } from "../src/handlers/from-config.ts";
import { jobContext } from "../src/handlers/handler.ts";
import { createSigner, SIGNATURE_HEADER, standardKey, standardSignature } from "../src/handlers/signing.ts";
import { createWebhookHandler } from "../src/handlers/webhook.ts";
import { call, startQueueWith, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

/** The secret jobqueue and the receiver share: "whsec_" and the base64 of 32 bytes. */
const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789ABCDEF").toString("base64")}`;
const OTHER_SECRET = `whsec_${Buffer.from("fedcba9876543210fedcba9876543210").toString("base64")}`;

describe("the signature", () => {
  test("is the specification's: the known answer of the Standard Webhooks reference libraries", () => {
    const key = standardKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!;
    expect(standardSignature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'))
      .toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  test("is keyed by the bytes the base64 after whsec_ decodes to, not by the secret's text", () => {
    expect(standardKey(SECRET)).toEqual(Buffer.from("0123456789abcdef0123456789ABCDEF"));
    const headers = createSigner("standard", SECRET)(7, "{}", 1_900_000_000);
    expect(headers["webhook-signature"]).toBe(new Webhook(SECRET).sign("msg_7", new Date(1_900_000_000_000), "{}"));
    expect(headers["webhook-signature"]).not.toBe(new Webhook(SECRET, { format: "raw" }).sign("msg_7", new Date(1_900_000_000_000), "{}"));
  });
});

describe("a webhook with a whsec_ secret", () => {
  function capture() {
    const sent: { headers: Headers; body: string }[] = [];
    const fakeFetch = (async (_url: string | URL | Request, init?: RequestInit) => {
      sent.push({ headers: new Headers(init?.headers), body: String(init?.body) });
      return new Response("ok");
    }) as typeof fetch;
    return { sent, fakeFetch };
  }
  const job = (attempt: number) =>
    jobContext({ id: 42, type: "email", payloadText: '{"to":"a@b.c"}', attempt, maxAttempts: 5, priority: 0, createdAt: 0 });

  test("sends webhook-id msg_<job id>, webhook-timestamp in unix seconds and webhook-signature v1,<base64>, and no x-jobqueue-signature", async () => {
    const { sent, fakeFetch } = capture();
    await createWebhookHandler({ url: "http://127.0.0.1:1/h", secret: SECRET, clock: () => 1_900_000_000_900, fetch: fakeFetch })(job(1), new AbortController().signal);
    const { headers, body } = sent[0]!;
    expect(headers.get("webhook-id")).toBe("msg_42");
    expect(headers.get("x-job-id")).toBe("42");
    expect(headers.get("webhook-timestamp")).toBe("1900000000");
    expect(headers.get("webhook-signature")).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(headers.get("webhook-signature")).toBe(new Webhook(SECRET).sign("msg_42", new Date(1_900_000_000_000), body));
    expect(headers.has(SIGNATURE_HEADER)).toBe(false);
  });

  test("signs every attempt afresh, with the time it is sent, under the same webhook-id", async () => {
    const { sent, fakeFetch } = capture();
    let nowMs = 1_900_000_000_000;
    const handler = createWebhookHandler({ url: "http://127.0.0.1:1/h", secret: SECRET, clock: () => nowMs, fetch: fakeFetch });
    await handler(job(1), new AbortController().signal);
    nowMs += 7_000;
    await handler(job(2), new AbortController().signal);
    const [first, second] = sent.map((s) => s.headers);
    expect(second!.get("webhook-id")).toBe(first!.get("webhook-id")!);
    expect(first!.get("webhook-timestamp")).toBe("1900000000");
    expect(second!.get("webhook-timestamp")).toBe("1900000007");
    expect(second!.get("webhook-signature")).toBe(new Webhook(SECRET).sign("msg_42", new Date(1_900_000_007_000), sent[1]!.body));
  });
});

/** One request as the receiver got it. */
interface Received {
  attempt: number;
  headers: Record<string, string>;
  bytes: Uint8Array;
  body: string;
  /** The receiver's clock when the request arrived, floored and ceiled to whole seconds. */
  arrivedFloorS: number;
  arrivedCeilS: number;
}

describe("real deliveries from a running queue", () => {
  const received: Received[] = [];
  let receiver: ReturnType<typeof Bun.serve>;
  let site: Awaited<ReturnType<typeof storeSite>>;
  let queue: TestQueue;
  let jobId: string;
  let submittedFloorS: number;

  beforeAll(async () => {
    // Answers a job's first attempt 500 and every later one 200, keeping each request's raw bytes.
    receiver = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const nowS = Date.now() / 1000;
        const bytes = new Uint8Array(await req.arrayBuffer());
        const attempt = Number(req.headers.get("x-job-attempt"));
        received.push({
          attempt, headers: Object.fromEntries(req.headers), bytes, body: new TextDecoder().decode(bytes),
          arrivedFloorS: Math.floor(nowS), arrivedCeilS: Math.ceil(nowS),
        });
        return new Response(attempt === 1 ? "not yet" : "ok", { status: attempt === 1 ? 500 : 200 });
      },
    });
    const types = parseTypesConfig(
      `[types.email]\nurl = "http://127.0.0.1:${receiver.port}/hooks/email"\nmax_attempts = 3\nsecret_env = "EMAIL_HOOK_SECRET"\n`,
      "toml", { timeoutMs: 5000, maxAttempts: 3 }, "jobs.toml", { EMAIL_HOOK_SECRET: SECRET },
    );
    site = await storeSite("sqlite");
    queue = await startQueueWith(site.open(), registryFromTypes(types, { timeoutMs: 5000, maxAttempts: 3, priority: 0 }));
    submittedFloorS = Math.floor(Date.now() / 1000);
    const res = await call(queue, "POST", "/submit", { type: "email", payload: { to: "a@b.c", text: "héllo ✓ 𝄞" } });
    expect(res.status).toBe(202);
    jobId = res.body.id;
    await waitFor(async () => received.length >= 2 && (await call(queue, "GET", `/jobs/${jobId}`)).status === 404, { what: "both attempts delivered and the job done" });
  });

  afterAll(async () => {
    await queue?.shutdown(1000);
    await site?.drop();
    receiver?.stop(true);
  });

  test("verify with the standardwebhooks library under the configured secret", () => {
    expect(received.map((r) => r.attempt)).toEqual([1, 2]);
    for (const r of received) {
      expect(new Webhook(SECRET).verify(r.body, r.headers)).toMatchObject({ id: jobId, type: "email", attempt: r.attempt, payload: { text: "héllo ✓ 𝄞" } });
    }
  });

  test("do not verify under another secret, or with the body changed", () => {
    for (const r of received) {
      expect(() => new Webhook(OTHER_SECRET).verify(r.body, r.headers)).toThrow("No matching signature found");
      expect(() => new Webhook(SECRET).verify(r.body.replace("a@b.c", "x@b.c"), r.headers)).toThrow("No matching signature found");
      expect(() => new Webhook(SECRET).verify(`${r.body} `, r.headers)).toThrow("No matching signature found");
    }
  });

  test("carry the same webhook-id on both attempts of the job, and each attempt the time it was sent", () => {
    const [first, second] = received;
    expect(first!.headers["webhook-id"]).toBe(`msg_${jobId}`);
    expect(second!.headers["webhook-id"]).toBe(`msg_${jobId}`);
    const t1 = Number(first!.headers["webhook-timestamp"]);
    const t2 = Number(second!.headers["webhook-timestamp"]);
    // Stamped between the submit and the first arrival, and the second after the first was answered.
    expect(t1).toBeGreaterThanOrEqual(submittedFloorS);
    expect(t1).toBeLessThanOrEqual(first!.arrivedCeilS);
    expect(t2).toBeGreaterThanOrEqual(first!.arrivedFloorS);
    expect(t2).toBeLessThanOrEqual(second!.arrivedCeilS);
    expect(second!.headers["webhook-signature"]).not.toBe(first!.headers["webhook-signature"]);
  });

  /** The one ```python block of docs/security.md. */
  function pythonSnippet(): string {
    const doc = readFileSync(join(import.meta.dir, "..", "docs", "security.md"), "utf8");
    const blocks = [...doc.matchAll(/^```python\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    expect(blocks).toHaveLength(1);
    return blocks[0]!;
  }

  // CI has python3 and fails on a skipped test, so this skip only ever spares a machine without it.
  test.skipIf(Bun.which("python3") === null)(
    "the Python verifier in docs/security.md accepts a real delivery and refuses another secret, a changed body and a stale or future timestamp",
    async () => {
      const delivery = received[1]!;
      const sign = createSigner("standard", SECRET);
      const nowS = Date.now() / 1000;
      const resigned = (atS: number) => ({ ...delivery.headers, ...sign(jobId, delivery.body, atS) });
      const goodSignature = delivery.headers["webhook-signature"]!;
      const cases: { what: string; secret: string; headers: Record<string, string>; body: Uint8Array; expected: boolean }[] = [
        { what: "the delivery", secret: SECRET, headers: delivery.headers, body: delivery.bytes, expected: true },
        { what: "among other entries", secret: SECRET, headers: { ...delivery.headers, "webhook-signature": `v2,abc v1,${"A".repeat(43)}= ${goodSignature}` }, body: delivery.bytes, expected: true },
        { what: "another secret", secret: OTHER_SECRET, headers: delivery.headers, body: delivery.bytes, expected: false },
        { what: "a changed body", secret: SECRET, headers: delivery.headers, body: new TextEncoder().encode(delivery.body.replace("a@b.c", "x@b.c")), expected: false },
        { what: "a changed webhook-id", secret: SECRET, headers: { ...delivery.headers, "webhook-id": "msg_0" }, body: delivery.bytes, expected: false },
        { what: "signed ten minutes ago", secret: SECRET, headers: resigned(nowS - 600), body: delivery.bytes, expected: false },
        { what: "signed ten minutes ahead", secret: SECRET, headers: resigned(nowS + 600), body: delivery.bytes, expected: false },
        { what: "no signature", secret: SECRET, headers: { ...delivery.headers, "webhook-signature": "" }, body: delivery.bytes, expected: false },
        { what: "a timestamp that is not a number", secret: SECRET, headers: { ...delivery.headers, "webhook-timestamp": "soon" }, body: delivery.bytes, expected: false },
      ];
      const harness = `
import base64, json, sys
for case in json.load(sys.stdin):
    print(json.dumps(verify(case["secret"], case["headers"], base64.b64decode(case["body"]))))
`;
      const dir = mkdtempSync(join(tmpdir(), "jq-verify-py-"));
      try {
        const script = join(dir, "verify.py");
        await Bun.write(script, pythonSnippet() + harness);
        const input = JSON.stringify(cases.map((c) => ({ secret: c.secret, headers: c.headers, body: Buffer.from(c.body).toString("base64") })));
        const proc = Bun.spawn(["python3", script], { stdin: new TextEncoder().encode(input), stdout: "pipe", stderr: "pipe" });
        const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
        expect(err).toBe("");
        expect(code).toBe(0);
        const answers = out.trim().split("\n").map((line) => JSON.parse(line) as boolean);
        expect(cases.map((c, i) => [c.what, answers[i]])).toEqual(cases.map((c) => [c.what, c.expected]));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
