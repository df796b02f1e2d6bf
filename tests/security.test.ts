// security.test.ts: webhook signatures (the jobqueue-v1 scheme, and which secret signs which type;
// tests/webhook-signing.test.ts has the Standard Webhooks deliveries), the bearer-token gate, backpressure on a real queue, slow
// clients against the real Bun.serve, and that no token, webhook secret or database password ever
// reaches a log line or an answer (a real server on PostgreSQL with all three set).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config/config.ts";
import { ConfigError } from "../src/errors.ts";
import { PermanentError } from "../src/errors.ts";
import { registryFromTypes } from "../src/handlers/from-config.ts";
import { jobContext } from "../src/handlers/handler.ts";
import { createWebhookHandler, ERROR_BODY_LIMIT } from "../src/handlers/webhook.ts";
import { isLoopbackHost, isValidToken, loadToken } from "../src/config/access.ts";
import { bearerGate } from "../src/http/auth.ts";
import { createLogger } from "../src/logger.ts";
import { startServer } from "../src/server.ts";
import { SIGNATURE_HEADER, WEBHOOK_SIGNATURE_HEADER, signatureHeader, verifySignature } from "../src/handlers/signing.ts";
import { Webhook } from "standardwebhooks";
import { createTestDatabase } from "./support/pg.ts";
import { rawRequest, trickle } from "./support/raw-http.ts";
import { startTestServer, type TestServer } from "./support/test-server.ts";
import { waitFor } from "./support/wait.ts";

/** A jobqueue-v1 secret (not a Standard Webhooks one: "_" is not base64), used as written. */
const SECRET = "whsec_test_0123456789abcdef";
/** A Standard Webhooks secret. */
const STANDARD_SECRET = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;
const TOKEN = "tok_0123456789abcdefABCDEF";
const NOW_S = 1_900_000_000;

describe("webhook signatures: the jobqueue-v1 scheme, and which secret signs which type", () => {
  const body = '{"id":"7","type":"email","payload":{"to":"a@b.c"},"attempt":1,"maxAttempts":5}';

  test("a signature is t=<unix seconds>,v1=<64 hex digits>", () => {
    expect(signatureHeader(SECRET, body, NOW_S + 0.9)).toMatch(new RegExp(`^t=${NOW_S},v1=[0-9a-f]{64}$`));
  });

  test("the v1 digest is the HMAC-SHA256 of `t.body` under the secret, as a receiver computes it", () => {
    const expected = new Bun.CryptoHasher("sha256", SECRET).update(`${NOW_S}.${body}`).digest("hex");
    expect(signatureHeader(SECRET, body, NOW_S)).toBe(`t=${NOW_S},v1=${expected}`);
  });

  test("a fresh signature of the exact body verifies", () => {
    const header = signatureHeader(SECRET, body, NOW_S);
    expect(verifySignature(SECRET, header, body, NOW_S)).toBe(true);
    expect(verifySignature(SECRET, header, body, NOW_S + 300)).toBe(true);
    expect(verifySignature(SECRET, header, body, NOW_S - 300)).toBe(true);
  });

  test("a changed body, another secret or a changed timestamp does not verify", () => {
    const header = signatureHeader(SECRET, body, NOW_S);
    expect(verifySignature(SECRET, header, body.replace("a@b.c", "x@b.c"), NOW_S)).toBe(false);
    expect(verifySignature(SECRET, header, body + " ", NOW_S)).toBe(false);
    expect(verifySignature(SECRET + "x", header, body, NOW_S)).toBe(false);
    expect(verifySignature(SECRET, header.replace(`t=${NOW_S}`, `t=${NOW_S + 1}`), body, NOW_S)).toBe(false);
  });

  test("a stale or future timestamp is refused (replay protection), with a configurable tolerance", () => {
    const header = signatureHeader(SECRET, body, NOW_S);
    expect(verifySignature(SECRET, header, body, NOW_S + 301)).toBe(false);
    expect(verifySignature(SECRET, header, body, NOW_S - 301)).toBe(false);
    expect(verifySignature(SECRET, header, body, NOW_S + 30, 10)).toBe(false);
    expect(verifySignature(SECRET, header, body, NOW_S + 3000, 3600)).toBe(true);
  });

  test("malformed headers are refused without throwing", () => {
    const good = signatureHeader(SECRET, body, NOW_S);
    const v1 = good.slice(good.indexOf("v1="));
    for (const header of [
      undefined, null, "", "garbage", v1, `t=${NOW_S}`, `t=abc,${v1}`, `t=${NOW_S},t=${NOW_S},${v1}`,
      `t=-${NOW_S},${v1}`, `t=${NOW_S}.5,${v1}`, `t=${NOW_S},v1=`, `t=${NOW_S},v1=${"0".repeat(64)}`,
      `t=${NOW_S},v1=${v1.slice(3).toUpperCase()}`, `t=${NOW_S},v0=${v1.slice(3)}`, "x".repeat(10_000),
    ]) {
      expect(verifySignature(SECRET, header, body, NOW_S)).toBe(false);
    }
  });

  test("any one of several v1 entries may match (a receiver rotating secrets)", () => {
    const good = signatureHeader(SECRET, body, NOW_S);
    const other = signatureHeader("whsec_other_0123456789", body, NOW_S).split(",")[1]!;
    expect(verifySignature(SECRET, `${good},${other}`, body, NOW_S)).toBe(true);
    expect(verifySignature(SECRET, `t=${NOW_S},${other},${good.split(",")[1]}`, body, NOW_S)).toBe(true);
  });

  function capture() {
    const sent: { url: string; headers: Headers; body: string }[] = [];
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      sent.push({ url: String(url), headers: new Headers(init?.headers), body: String(init?.body) });
      return new Response("ok");
    }) as typeof fetch;
    return { sent, fakeFetch };
  }
  const job = jobContext({ id: 42, type: "email", payloadText: '{"to":"a@b.c"}', attempt: 2, maxAttempts: 5, priority: 0, createdAt: 0 });

  test("a jobqueue-v1 webhook signs each delivery over the exact body it sends, and sends no Standard Webhooks headers", async () => {
    const { sent, fakeFetch } = capture();
    const handler = createWebhookHandler({ url: "http://127.0.0.1:1/h", secret: SECRET, signature: "jobqueue-v1", clock: () => NOW_S * 1000, fetch: fakeFetch });
    await handler(job, new AbortController().signal);
    const { headers, body: sentBody } = sent[0]!;
    expect(sentBody).toBe('{"id":"42","type":"email","payload":{"to":"a@b.c"},"attempt":2,"maxAttempts":5}');
    expect(verifySignature(SECRET, headers.get(SIGNATURE_HEADER), sentBody, NOW_S)).toBe(true);
    expect([...headers.keys()].filter((name) => name.startsWith("webhook-"))).toEqual([]);
  });

  test("a jobqueue-v1 secret is used as written, whatever it looks like", async () => {
    const { sent, fakeFetch } = capture();
    await createWebhookHandler({ url: "http://127.0.0.1:1/h", secret: STANDARD_SECRET, signature: "jobqueue-v1", clock: () => NOW_S * 1000, fetch: fakeFetch })(job, new AbortController().signal);
    const expected = new Bun.CryptoHasher("sha256", STANDARD_SECRET).update(`${NOW_S}.${sent[0]!.body}`).digest("hex");
    expect(sent[0]!.headers.get(SIGNATURE_HEADER)).toBe(`t=${NOW_S},v1=${expected}`);
  });

  test("a webhook without a secret sends no signature", async () => {
    const { sent, fakeFetch } = capture();
    await createWebhookHandler({ url: "http://127.0.0.1:1/h", fetch: fakeFetch })(job, new AbortController().signal);
    expect([...sent[0]!.headers.keys()].filter((name) => name === SIGNATURE_HEADER || name.startsWith("webhook-"))).toEqual([]);
  });

  test("a secret that does not suit its scheme stops the handler from being made, without quoting the secret", () => {
    for (const [secret, signature] of [["hunter2hunter2hunter2", "standard"], ["whsec_hunter2hunter2hunter2", undefined], ["hunter2", "jobqueue-v1"]] as const) {
      const err = (() => {
        try {
          createWebhookHandler({ url: "http://127.0.0.1:1/h", secret, ...(signature !== undefined && { signature }) });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(": expected ");
      expect((err as Error).message).not.toContain("hunter2");
    }
  });

  test("a webhook's error answer keeps no NUL or control bytes for last_error (PostgreSQL text refuses NUL)", async () => {
    const handler = createWebhookHandler({
      url: "http://127.0.0.1:1/h",
      fetch: (async () => new Response("bad\u0000byte\u001b[31m\ttab\nline", { status: 500 })) as unknown as typeof fetch,
    });
    const err = await Promise.resolve(handler(job, new AbortController().signal)).catch((e: unknown) => e);
    expect((err as Error).message).toBe("webhook answered 500: bad\ufffdbyte\ufffd[31m\ttab\nline");
  });

  const webhookType = (name: string, extra: { secret?: string; signature?: "standard" | "jobqueue-v1" } = {}) =>
    [name, { kind: "webhook" as const, url: `http://127.0.0.1:1/${name}`, timeoutMs: 1000, maxAttempts: 1, headers: {}, ...extra }] as const;
  const policy = { timeoutMs: 1000, maxAttempts: 1, priority: 0 };

  test("a type's own secret wins over --webhook-secret, which signs the types that set none, each with the type's scheme", async () => {
    const { sent, fakeFetch } = capture();
    const types = new Map([
      webhookType("own", { secret: SECRET, signature: "jobqueue-v1" }),
      webhookType("global_v1", { signature: "jobqueue-v1" }),
      webhookType("global_standard"),
    ]);
    const global = `whsec_${Buffer.alloc(24, 3).toString("base64")}`;
    const clock = () => Date.now();
    const registry = registryFromTypes(types, policy, { webhookSecret: global, clock, fetch: fakeFetch });
    for (const name of ["own", "global_v1", "global_standard"]) await registry.get(name)!.handler(job, new AbortController().signal);
    const now = Date.now() / 1000;
    expect(verifySignature(SECRET, sent[0]!.headers.get(SIGNATURE_HEADER), sent[0]!.body, now)).toBe(true);
    expect(verifySignature(global, sent[1]!.headers.get(SIGNATURE_HEADER), sent[1]!.body, now)).toBe(true);
    expect(sent[2]!.headers.has(SIGNATURE_HEADER)).toBe(false);
    expect(() => new Webhook(global).verify(sent[2]!.body, Object.fromEntries(sent[2]!.headers))).not.toThrow();
  });

  test("a --webhook-secret that does not suit a type it would sign is refused at start-up, naming the type, not the secret", () => {
    const legacyGlobal = "hunter2-legacy-0123456789";
    // Fine while every type it signs opts into jobqueue-v1 (or has a secret of its own) ...
    const ok = new Map([webhookType("old", { signature: "jobqueue-v1" }), webhookType("own", { secret: STANDARD_SECRET })]);
    expect(() => registryFromTypes(ok, policy, { webhookSecret: legacyGlobal })).not.toThrow();
    // ... refused as soon as it would sign a type the standard way.
    const standard = new Map([webhookType("old", { signature: "jobqueue-v1" }), webhookType("email")]);
    const err = (() => {
      try {
        registryFromTypes(standard, policy, { webhookSecret: legacyGlobal });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toStartWith('--webhook-secret / JOBQUEUE_WEBHOOK_SECRET signs type "email", whose signature is "standard": expected whsec_');
    expect(err!.message).not.toContain("hunter2");
  });

  test("a type that names a signature scheme but has no secret from anywhere is refused", () => {
    const types = new Map([webhookType("email", { signature: "jobqueue-v1" })]);
    expect(() => registryFromTypes(types, policy)).toThrow('type "email" sets signature = "jobqueue-v1" but has no secret');
    expect(() => registryFromTypes(types, policy, { webhookSecret: SECRET })).not.toThrow();
  });
});

describe("a failing webhook's answer", () => {
  /** A receiver over real HTTP whose 500 answers are `body` and then, with `endless`, never end. */
  function receiverOf(first: string, endless: boolean) {
    const state = { cancelled: false };
    const filler = new Uint8Array(64 * 1024).fill(0x78);
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response(new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(first));
          if (!endless) c.close();
        },
        pull(c) {
          c.enqueue(filler);
        },
        cancel() {
          state.cancelled = true;
        },
      }), { status: 500 }),
    });
    return { url: `http://127.0.0.1:${server.port}/h`, state, stop: () => server.stop(true) };
  }
  const job = jobContext({ id: 9, type: "t", payloadText: "{}", attempt: 1, maxAttempts: 1, priority: 0, createdAt: 0 });
  async function failure(url: string): Promise<string> {
    // A generous deadline, so a handler that read on without end would fail here rather than hang.
    const err = await Promise.resolve(createWebhookHandler({ url })(job, AbortSignal.timeout(20_000))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    return (err as Error).message;
  }

  test("an answer that never ends is read only as far as it is kept, then cancelled", async () => {
    const r = receiverOf("overloaded: ", true);
    try {
      expect(await failure(r.url)).toBe(`webhook answered 500: overloaded: ${"x".repeat(ERROR_BODY_LIMIT - "overloaded: ".length)}`);
      // The handler returned while the answer was still streaming: it stopped reading and hung up.
      await waitFor(() => r.state.cancelled, { what: "the receiver's stream cancelled" });
    } finally {
      r.stop();
    }
  }, 30_000);

  test("the first 500 bytes are kept, without a character cut in half", async () => {
    const r = receiverOf(`${"é".repeat(300)}`, false);
    try {
      // 500 bytes are 250 two-byte characters.
      expect(await failure(r.url)).toBe(`webhook answered 500: ${"é".repeat(250)}`);
    } finally {
      r.stop();
    }
    const odd = receiverOf(`a${"é".repeat(300)}`, false);
    try {
      // 1 + 249 × 2 = 499 bytes: the 250th é would straddle the limit and is left out.
      expect(await failure(odd.url)).toBe(`webhook answered 500: a${"é".repeat(249)}`);
    } finally {
      odd.stop();
    }
  });
});

describe("the bearer-token gate", () => {
  const app = (req: Request) => Response.json({ reached: new URL(req.url).pathname });
  const gate = bearerGate({ token: TOKEN, metricsPublic: false, fetch: app });
  const call = (g: typeof gate, path: string, init: RequestInit = {}) => g(new Request(`http://x${path}`, init));
  const auth = (value: string) => ({ headers: { authorization: value } });

  async function expectUnauthorized(res: Response | Promise<Response>) {
    const r = await res;
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toStartWith("Bearer");
    expect(r.headers.get("content-type")).toContain("application/json");
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("unauthorized");
    expect(JSON.stringify(body)).not.toContain(TOKEN);
  }

  test("every endpoint but /health, /ready, /ui and /openapi.json answers 401 unauthorized without the token", async () => {
    for (const path of ["/submit", "/jobs", "/jobs?state=dead", "/jobs/1", "/stats/history", "/metrics", "/types", "/types/x/pause", "/nope", "/", "/health/", "//health", "/healthz", "/ready/x", "/openapi.json/", "/openapi.jsonx", "/openapi"]) {
      await expectUnauthorized(call(gate, path));
    }
    await expectUnauthorized(call(gate, "/submit", { method: "POST", body: "{}" }));
  });

  test("/health and /ready stay open for probes", async () => {
    expect((await call(gate, "/health")).status).toBe(200);
    expect((await call(gate, "/ready?verbose=1")).status).toBe(200);
    expect((await call(gate, "/%68ealth")).status).toBe(200); // the router reads this as /health too
  });

  test("/openapi.json stays open: it holds no data, and client generators fetch it without a token", async () => {
    expect(await (await call(gate, "/openapi.json")).json()).toEqual({ reached: "/openapi.json" });
  });

  test("the right token in Authorization: Bearer passes, the scheme in any case", async () => {
    for (const value of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER  ${TOKEN} `]) {
      expect(await (await call(gate, "/submit", auth(value))).json()).toEqual({ reached: "/submit" });
    }
  });

  test("a wrong, truncated, extended or differently sent token is refused", async () => {
    for (const value of [
      `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.toLowerCase()}`, `Basic ${btoa(`u:${TOKEN}`)}`,
      TOKEN, `Bearer`, `Bearer ${TOKEN} ${TOKEN}`, `Token ${TOKEN}`, "",
    ]) {
      await expectUnauthorized(call(gate, "/submit", auth(value)));
    }
    await expectUnauthorized(call(gate, `/submit?access_token=${TOKEN}`));
  });

  test("--metrics-public opens /metrics and nothing else", async () => {
    const open = bearerGate({ token: TOKEN, metricsPublic: true, fetch: app });
    expect((await call(open, "/metrics")).status).toBe(200);
    await expectUnauthorized(call(open, "/submit"));
    await expectUnauthorized(call(open, "/metrics/x"));
  });

  test("without a token the gate is not there at all", () => {
    expect(bearerGate({ token: undefined, metricsPublic: false, fetch: app })).toBe(app);
  });

  test("tokens are RFC 6750 b64token text of 16 to 4096 characters", () => {
    expect(isValidToken(TOKEN)).toBe(true);
    expect(isValidToken("YWJjZGVmZ2hpamtsbW5vcA==")).toBe(true);
    for (const bad of ["short", "x".repeat(4097), "has space 0123456789", "quote\"0123456789abc", "é0123456789abcdef", "=0123456789abcdef"]) {
      expect(isValidToken(bad)).toBe(false);
    }
  });
});

describe("the token and the listen address at start-up", () => {
  const dir = mkdtemp(join(tmpdir(), "jobqueue-token-"));
  afterAll(async () => rm(await dir, { recursive: true, force: true }));
  const config = (argv: string[]) => loadConfig({}, argv, "test").config;

  test("--token-file is read and trimmed", async () => {
    const path = join(await dir, "token");
    await writeFile(path, `  ${TOKEN}\n\n`);
    expect(await loadToken(config(["--token-file", path]))).toBe(TOKEN);
    expect(await loadToken(config(["--token", TOKEN]))).toBe(TOKEN);
    expect(await loadToken(config([]))).toBeUndefined();
  });

  test("an unreadable or malformed token file is a ConfigError naming the file, never its content", async () => {
    const missing = join(await dir, "missing");
    const err1 = await loadToken(config(["--token-file", missing])).catch((e: unknown) => e);
    expect(err1).toBeInstanceOf(ConfigError);
    expect((err1 as Error).message).toContain(missing);
    const bad = join(await dir, "bad");
    await writeFile(bad, "hunter2 hunter2 hunter2\n");
    const err2 = await loadToken(config(["--token-file", bad])).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ConfigError);
    expect((err2 as Error).message).toContain(bad);
    expect((err2 as Error).message).not.toContain("hunter2");
  });

  test("loopback addresses are told apart from addresses other machines can reach", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
      expect(isLoopbackHost(host)).toBe(true);
    }
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.com", "128.0.0.1", "localhost.evil.com", "::2"]) {
      expect(isLoopbackHost(host)).toBe(false);
    }
  });

  test("a server on loopback without a token starts without the exposure warning", async () => {
    const lines: string[] = [];
    const s = await startTestServer({ logger: createLogger("warn", (l) => void lines.push(l)) });
    await s.stop();
    expect(lines.join("")).not.toContain("without a token");
  });
});

describe("a real server with a token", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ env: { JOBQUEUE_TOKEN: TOKEN } });
  });
  afterAll(async () => s.stop());

  test("a submit without the token is refused with 401 and stores nothing", async () => {
    const res = await fetch(`${s.server.url}/submit`, {
      method: "POST", headers: { "content-type": "application/json" }, body: '{"type":"noop"}',
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    expect(await s.rows()).toBe(0);
  });

  test("a submit with the token is accepted, and probes and the OpenAPI document need none", async () => {
    const res = await fetch(`${s.server.url}/submit`, {
      method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` }, body: '{"type":"noop"}',
    });
    expect(res.status).toBe(202);
    expect(await s.rows()).toBe(1);
    expect((await fetch(`${s.server.url}/health`)).status).toBe(200);
    expect((await fetch(`${s.server.url}/ready`)).status).toBe(200);
    expect((await fetch(`${s.server.url}/openapi.json`)).status).toBe(200);
    expect((await fetch(`${s.server.url}/metrics`)).status).toBe(401);
  });

  test("a path that the server normalises is gated by where it lands", async () => {
    const res = await rawRequest(s.server.port, "GET /health/../submit HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(res.status).toBe(401);
    // No Host (HTTP/1.0 allows that; some health checkers send none): routed by its own path.
    const http10 = await rawRequest(s.server.port, "GET /health HTTP/1.0\r\n\r\n");
    expect(http10.status).toBe(200);
    expect(JSON.parse(http10.body)).toEqual({ status: "ok" });
    expect((await rawRequest(s.server.port, "GET /jobs/1 HTTP/1.0\r\n\r\n")).status).toBe(401);
  });
});

describe("other web pages: Origin, body types and, without a token, the Host", () => {
  let open: TestServer;
  let allowing: TestServer;
  let tokened: TestServer;
  /** A type whose jobs die at once, so each server holds dead jobs a forged request could retry. */
  const doomed = () => {
    throw new PermanentError("doomed");
  };
  beforeAll(async () => {
    open = await startTestServer({ handlers: { doomed } });
    allowing = await startTestServer({ args: ["--allowed-hosts", "jobs.example.com,*.corp.example"] });
    tokened = await startTestServer({ env: { JOBQUEUE_TOKEN: TOKEN }, handlers: { doomed } });
    for (const s of [open, tokened]) {
      const res = await fetch(`${s.server.url}/submit`, {
        method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` }, body: '{"type":"doomed"}',
      });
      expect(res.status).toBe(202);
      await waitFor(async () => (await deadCount(s)) === 1, { what: "a dead job" });
    }
  });
  afterAll(async () => {
    for (const s of [open, allowing, tokened]) await s.stop();
  });

  /** One request over raw TCP, so Host and Origin are exactly what a browser (or an attacker) would send. */
  const send = (s: TestServer, head: string, body = "") =>
    rawRequest(s.server.port, `${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const deadCount = async (s: TestServer) =>
    ((await (await s.server.app.request("/stats")).json()) as { jobs: { dead: number } }).jobs.dead;
  function expectError(res: { status: number; headers: Record<string, string>; body: string }, status: number, code: string): string {
    expect(res.status).toBe(status);
    expect(res.headers["content-type"]).toContain("application/json");
    const { error } = JSON.parse(res.body) as { error: { code: string; message: string } };
    expect(error.code).toBe(code);
    return error.message;
  }

  test("without a token, loopback names with any port serve the API", async () => {
    const port = open.server.port;
    for (const host of [`127.0.0.1:${port}`, "127.0.0.1", `localhost:${port}`, "LOCALHOST", "localhost.", "app.localhost:3000", "127.9.8.7", `[::1]:${port}`, "[::1]"]) {
      const res = await send(open, `GET /stats HTTP/1.1\r\nHost: ${host}`);
      expect(res.status, host).toBe(200);
    }
  });

  test("without a token, any other Host is refused with 403 forbidden_host, and nothing is stored", async () => {
    const before = await open.rows();
    for (const host of ["evil.example", `evil.example:${open.server.port}`, "127.0.0.1.evil.example", "localhost.evil.example", "evil-localhost", "10.0.0.1", "[::2]", "0.0.0.0", "[::ffff:10.0.0.1]"]) {
      const message = expectError(await send(open, `GET /stats HTTP/1.1\r\nHost: ${host}`), 403, "forbidden_host");
      expect(message).toContain("--allowed-hosts");
      expect(message).toContain("JOBQUEUE_TOKEN");
      expectError(await send(open, `POST /submit HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json`, '{"type":"noop"}'), 403, "forbidden_host");
      expectError(await send(open, `POST /dead/retry?type=doomed HTTP/1.1\r\nHost: ${host}`), 403, "forbidden_host");
    }
    // No Host at all (HTTP/1.0), and one that is not a host name.
    expectError(await rawRequest(open.server.port, "GET /stats HTTP/1.0\r\n\r\n"), 403, "forbidden_host");
    expectError(await rawRequest(open.server.port, Buffer.from("GET /stats HTTP/1.1\r\nHost: \xe9vil\r\n\r\n", "latin1")), 403, "forbidden_host");
    expect(await open.rows()).toBe(before);
    expect(await deadCount(open)).toBe(1);
  });

  test("the refusal quotes a Host only when it is printable ASCII", async () => {
    expect(expectError(await send(open, "GET /stats HTTP/1.1\r\nHost: evil.example:81"), 403, "forbidden_host")).toContain('"evil.example:81"');
    const odd = expectError(await rawRequest(open.server.port, Buffer.from("GET /stats HTTP/1.1\r\nHost: \xe9vil\r\n\r\n", "latin1")), 403, "forbidden_host");
    expect(odd).toStartWith("requests for host are refused");
  });

  test("/health and /ready answer whatever the Host, for probes by pod IP", async () => {
    for (const path of ["/health", "/ready"]) {
      expect((await send(open, `GET ${path} HTTP/1.1\r\nHost: 10.1.2.3:8080`)).status).toBe(200);
      expect((await rawRequest(open.server.port, `GET ${path} HTTP/1.0\r\n\r\n`)).status).toBe(200);
    }
  });

  test("--allowed-hosts adds exact names and *.suffix subdomains, in any case and with any port", async () => {
    for (const host of ["jobs.example.com", "JOBS.example.COM:8080", "a.corp.example", "a.b.corp.example:1"]) {
      expect((await send(allowing, `GET /stats HTTP/1.1\r\nHost: ${host}`)).status, host).toBe(200);
    }
    for (const host of ["corp.example", "xcorp.example", "example.com", "jobs.example.com.evil", "evil.jobs.example.com"]) {
      expectError(await send(allowing, `GET /stats HTTP/1.1\r\nHost: ${host}`), 403, "forbidden_host");
    }
  });

  test("with a token the Host is not checked: the token is what a web page cannot have", async () => {
    const res = await send(tokened, `GET /stats HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
  });

  test("a state-changing request with a foreign Origin is refused with 403 forbidden_origin, token or not", async () => {
    const host = `127.0.0.1:${open.server.port}`;
    for (const origin of ["http://evil.example", `http://localhost:${open.server.port}`, `http://127.0.0.1:${open.server.port + 1}`, "http://127.0.0.1", "null", "file://", "chrome-extension://abc", "not a url"]) {
      for (const [method, path] of [["POST", "/dead/retry?type=doomed"], ["DELETE", "/dead?type=doomed"], ["DELETE", "/jobs/1"], ["PUT", "/submit"], ["PATCH", "/jobs/1"], ["POST", "/types/noop/pause"]]) {
        expectError(await send(open, `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nOrigin: ${origin}`), 403, "forbidden_origin");
      }
      expectError(await send(open, `POST /submit HTTP/1.1\r\nHost: ${host}\r\nOrigin: ${origin}\r\nContent-Type: application/json`, '{"type":"noop"}'), 403, "forbidden_origin");
      const authed = await send(tokened, `POST /dead/retry?type=doomed HTTP/1.1\r\nHost: ${host}\r\nOrigin: ${origin}\r\nAuthorization: Bearer ${TOKEN}`);
      expectError(authed, 403, "forbidden_origin");
    }
    expect(await deadCount(open)).toBe(1);
    expect(await deadCount(tokened)).toBe(1);
    expect(await open.rows()).toBe(1);
    const types = (await (await open.server.app.request("/types")).json()) as { types: { type: string; paused: boolean }[] };
    expect(types.types.find((t) => t.type === "noop")).toMatchObject({ paused: false });
  });

  test("reads with a foreign Origin are answered, without CORS headers, so the page cannot read them", async () => {
    const res = await send(open, `GET /stats HTTP/1.1\r\nHost: 127.0.0.1:${open.server.port}\r\nOrigin: http://evil.example`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.headers).filter((h) => h.startsWith("access-control-"))).toEqual([]);
  });

  test("a body other than JSON on a state-changing request is refused with 415, whatever the route", async () => {
    const host = `Host: 127.0.0.1:${open.server.port}`;
    for (const [contentType, body] of [["text/plain", "x"], ["text/plain;charset=UTF-8", ""], ["application/x-www-form-urlencoded", ""], ["application/x-www-form-urlencoded", "a=1"], ["multipart/form-data; boundary=z", "--z--"], [null, "x"]] as const) {
      const ct = contentType === null ? "" : `\r\nContent-Type: ${contentType}`;
      for (const [method, path] of [["POST", "/dead/retry?type=doomed"], ["DELETE", "/dead?type=doomed"], ["POST", "/submit"], ["POST", "/types/noop/pause"]]) {
        const message = expectError(await send(open, `${method} ${path} HTTP/1.1\r\n${host}${ct}`, body), 415, "unsupported_media_type");
        expect(message).toContain("application/json");
      }
    }
    // Chunked, without a length.
    const chunked = await rawRequest(open.server.port, `POST /dead/retry?type=doomed HTTP/1.1\r\n${host}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n`);
    expectError(chunked, 415, "unsupported_media_type");
    expect(await deadCount(open)).toBe(1);
  });

  test("same-origin requests, and programs that send no Origin, still change state", async () => {
    const host = `127.0.0.1:${open.server.port}`;
    // The dashboard's own fetches: same Origin, no body.
    const retried = await send(open, `POST /dead/retry?type=doomed HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}`);
    expect(retried.status).toBe(200);
    expect(JSON.parse(retried.body)).toEqual({ count: 1 });
    await waitFor(async () => (await deadCount(open)) === 1, { what: "the retried job dead again" });
    // curl -XPOST: no Origin, no body; a JSON body with its content type.
    expect((await send(open, `POST /dead/retry?type=doomed HTTP/1.1\r\nHost: ${host}`)).status).toBe(200);
    const submitted = await send(open, `POST /submit HTTP/1.1\r\nHost: localhost:${open.server.port}\r\nOrigin: http://localhost:${open.server.port}\r\nContent-Type: application/json`, '{"type":"noop"}');
    expect(submitted.status).toBe(202);
  });
});

describe("backpressure on a real queue", () => {
  test("submits past --max-queued get 429 queue_full with retry-after and store nothing", async () => {
    const s = await startTestServer({ args: ["--max-queued", "3"] });
    try {
      const submit = (body: unknown) =>
        fetch(`${s.server.url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      expect((await submit({ jobs: [{ type: "noop", delayMs: 60_000 }, { type: "noop", delayMs: 60_000 }] })).status).toBe(202);
      const overflow = await submit({ jobs: [{ type: "noop" }, { type: "noop" }] });
      expect(overflow.status).toBe(429);
      expect(overflow.headers.get("retry-after")).toBe("1");
      expect(((await overflow.json()) as { error: { code: string } }).error.code).toBe("queue_full");
      expect(await s.rows()).toBe(2);
      expect((await submit({ type: "noop", delayMs: 60_000 })).status).toBe(202);
      expect((await submit({ type: "noop" })).status).toBe(429);
      expect(await s.rows()).toBe(3);
    } finally {
      await s.stop();
    }
  });
});

describe("slow clients", () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ args: ["--idle-timeout-s", "1"] });
  });
  afterAll(async () => s.stop());

  test("an idle keep-alive connection is closed by the server", async () => {
    const res = await rawRequest(s.server.port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", { untilResponse: false, timeoutMs: 20_000 });
    expect(res.status).toBe(200);
    expect(res.closed).toBe(true);
  }, 60_000);

  test("a body that trickles in a byte at a time is cut off before it is complete, and nothing is stored", async () => {
    const body = JSON.stringify({ type: "noop", payload: "x".repeat(200) });
    const head = `POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    // Headers at once, then the body at 4 bytes a second: a whole minute if the server let it.
    const result = await trickle(s.server.port, body, 250, { prefix: head });
    expect(result.closedByServer).toBe(true);
    expect(result.received).toBe(""); // cut off, not answered (an answer would mean the body was never awaited)
    expect(result.sent).toBeLessThan(body.length);
    expect(await s.rows()).toBe(0);
  }, 60_000);

  test("request headers that trickle in a byte at a time (slowloris) are cut off", async () => {
    const head = `GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ${"a".repeat(200)}\r\n\r\n`;
    const result = await trickle(s.server.port, head, 250);
    expect(result.closedByServer).toBe(true);
    expect(result.sent).toBeLessThan(head.length);
    expect((await fetch(`${s.server.url}/health`)).status).toBe(200);
  }, 60_000);
});

describe("secrets never reach logs or answers", () => {
  const PG_PASSWORD = "pg-pass-Zq8rT5vW2x";
  /** Signs the "signed" type the standard way; "failing" opts into jobqueue-v1 with a secret of its own. */
  const GLOBAL_SECRET = `whsec_${"K7fP3mQ9sV1x".repeat(4)}`;
  const TYPE_SECRET = "jobqueue_type_N4bR8tY2uJ6k";
  let db: { url: string; drop: () => Promise<void> };
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase("jq_secrets");
    dir = await mkdtemp(join(tmpdir(), "jobqueue-secrets-"));
  });
  afterAll(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test("a server with a token, a database password and webhook secrets never logs or answers any of them", async () => {
    // The receiver: "failing" always answers 500 (quoting what it got), "signed" answers 200.
    const received: { path: string; signature: string | null; headers: Record<string, string>; body: string }[] = [];
    const receiver = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const body = await req.text();
        const path = new URL(req.url).pathname;
        received.push({ path, signature: req.headers.get(SIGNATURE_HEADER), headers: Object.fromEntries(req.headers), body });
        if (path === "/fail") return new Response(`rejected ${req.headers.get("authorization")} ${body}`, { status: 500 });
        return new Response("ok");
      },
    });
    const typesPath = join(dir, "jobs.toml");
    await writeFile(typesPath, `
[types.failing]
url = "http://127.0.0.1:${receiver.port}/fail"
max_attempts = 2
signature = "jobqueue-v1"
secret_env = "FAILING_SECRET"

[types.signed]
url = "http://127.0.0.1:${receiver.port}/ok"
`);
    const pgUrl = new URL(db.url);
    pgUrl.password = PG_PASSWORD; // the test cluster trusts local connections, so any password works
    const env = {
      DATABASE_URL: pgUrl.toString(),
      JOBQUEUE_TOKEN: TOKEN,
      JOBQUEUE_WEBHOOK_SECRET: GLOBAL_SECRET,
      JOBQUEUE_CONFIG: typesPath,
    };
    const argv = ["--port", "0", "--log-level", "debug", "--backoff-base-ms", "1", "--backoff-cap-ms", "5", "--workers", "2"];
    const lines: string[] = [];
    const logger = createLogger("debug", (l) => void lines.push(l));
    const server = await startServer({ config: loadConfig(env, argv, "test").config, logger, env: { FAILING_SECRET: TYPE_SECRET } });
    const answers: string[] = [];
    const call = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${server.url}${path}`, init);
      const text = await res.text();
      answers.push(`${res.status} ${JSON.stringify([...res.headers])} ${text}`);
      return { status: res.status, text };
    };
    const authed = (init: RequestInit = {}) => ({ ...init, headers: { ...(init.headers as object), authorization: `Bearer ${TOKEN}` } });
    const submit = (type: string) =>
      call("/submit", authed({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type }) }));
    try {
      // Bad auth of every kind, including near misses of the real token.
      expect((await call("/submit", { method: "POST", body: "{}" })).status).toBe(401);
      expect((await call("/jobs/1", { headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}` } })).status).toBe(401);
      expect((await call("/metrics", { headers: { authorization: `Basic ${btoa(`u:${TOKEN}`)}` } })).status).toBe(401);
      expect((await call("/nope", authed())).status).toBe(404);
      expect((await call("/submit", authed({ method: "POST", headers: { "content-type": "application/json" }, body: "{" }))).status).toBe(400);

      // A webhook that fails until the job is dead, and one that succeeds: both signed.
      const failing = JSON.parse((await submit("failing")).text) as { id: string };
      const signed = JSON.parse((await submit("signed")).text) as { id: string };
      await waitFor(async () => JSON.parse((await call(`/jobs/${failing.id}`, authed())).text).state === "dead", { what: "the failing job dead" });
      await waitFor(async () => (await call(`/jobs/${signed.id}`, authed())).status === 404, { what: "the signed job done" });
      expect((await call("/metrics", authed())).status).toBe(200);

      // The receiver saw valid signatures under the right secret for each type.
      const now = Date.now() / 1000;
      const fails = received.filter((r) => r.path === "/fail");
      const oks = received.filter((r) => r.path === "/ok");
      expect(fails).toHaveLength(2);
      expect(oks).toHaveLength(1);
      for (const r of fails) expect(verifySignature(TYPE_SECRET, r.signature, r.body, now)).toBe(true);
      expect(verifySignature(GLOBAL_SECRET, fails[0]!.signature, fails[0]!.body, now)).toBe(false);
      expect(oks[0]!.headers[WEBHOOK_SIGNATURE_HEADER]).toStartWith("v1,");
      expect(() => new Webhook(GLOBAL_SECRET).verify(oks[0]!.body, oks[0]!.headers)).not.toThrow();

      // The database goes away: store errors reach the logs, /ready and the submit answer.
      await db.drop();
      expect((await submit("signed")).status).toBe(503);
      expect((await call("/ready")).status).toBe(503);
    } finally {
      await server.stop(1000);
      await receiver.stop(true);
    }

    const logs = lines.join("");
    expect(logs).toContain('"msg":"listening"');
    expect(logs).toContain("store selected");
    expect(logs).toContain("submit failed");
    const everything = logs + answers.join("\n");
    for (const secret of [TOKEN, PG_PASSWORD, GLOBAL_SECRET, TYPE_SECRET]) {
      expect(everything).not.toContain(secret);
    }
    // Not even in part: the token's tail or a secret's middle would be enough to hurt.
    for (const secret of [TOKEN, PG_PASSWORD, GLOBAL_SECRET, TYPE_SECRET]) {
      expect(everything).not.toContain(secret.slice(4, 16));
    }
  }, 60_000);
});
