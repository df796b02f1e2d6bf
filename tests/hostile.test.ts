// hostile.test.ts: a table of bad requests against a real server (startServer), once on an embedded
// store in a temp file and once on a fresh PostgreSQL database: through app.request() and, for what
// that cannot express, raw bytes over TCP to 127.0.0.1. Every row checks the status, the JSON error
// code, that the store holds no new row, and that the server then still accepts a good submit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLogger } from "../src/logger.ts";
import { rawExchange, rawRequest } from "./support/raw-http.ts";
import { STORE_KINDS } from "./support/queues.ts";
import { startTestServer, type TestServer } from "./support/test-server.ts";

const TOKEN = "hostile_0123456789abcdefXYZ";
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;
const BODY_LIMIT = 1_048_576;

interface Answer {
  status: number;
  contentType: string;
  body: string;
  /** Over TCP: the server closed the connection (rather than the client giving up). */
  closed?: boolean;
}

interface Row {
  name: string;
  send: () => Promise<Answer>;
  status: number;
  /** The JSON error code; absent when Bun's HTTP parser answers before the app sees anything. */
  code?: string;
}

/** The server of the store block running now (the rows below send to it). */
let s: TestServer;

async function viaApp(path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await s.server.app.request(path, init);
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", body: await res.text() };
}

const json = { "content-type": "application/json" };
const post = (body: string | Uint8Array, headers: Record<string, string> = json) => () =>
  viaApp("/submit", { method: "POST", headers, body });
const postJob = (job: unknown) => post(JSON.stringify(job));
const get = (path: string, method = "GET") => () => viaApp(path, { method });

async function viaTcp(bytes: string | Uint8Array, timeoutMs = 10_000): Promise<Answer> {
  const res = await rawRequest(s.server.port, bytes, { timeoutMs });
  return { status: res.status, contentType: res.headers["content-type"] ?? "", body: res.body, closed: res.closed };
}
const tcp = (bytes: string | Uint8Array, timeoutMs?: number) => () => viaTcp(bytes, timeoutMs);
const rawPost = (body: string | Uint8Array, extraHeaders = "") => {
  const bytes = typeof body === "string" ? Buffer.from(body, "latin1") : body;
  const head = `POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${bytes.length}\r\n${extraHeaders}\r\n`;
  return tcp(Buffer.concat([Buffer.from(head, "latin1"), bytes]));
};

/** A chunked submit whose chunks have these sizes (the limit is checked as the bytes arrive). */
const chunked = (sizes: number[]) =>
  `POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
  sizes.map((n) => `${n.toString(16)}\r\n${"a".repeat(n)}\r\n`).join("") + "0\r\n\r\n";
const deep = (n: number, open: string, close: string, inner = "") => open.repeat(n) + inner + close.repeat(n);
const tooBig = JSON.stringify({ type: "noop", payload: "x".repeat(BODY_LIMIT) });

const rows: Row[] = [
  // ---- not JSON, or not the JSON we take
  { name: "malformed JSON", send: post('{"type": "noop",'), status: 400, code: "invalid_json" },
  { name: "JSON followed by garbage", send: post('{"type":"noop"} trailing'), status: 400, code: "invalid_json" },
  { name: "JSON with a comment", send: post('{"type":"noop" /* hi */}'), status: 400, code: "invalid_json" },
  { name: "single-quoted pseudo-JSON", send: post("{'type':'noop'}"), status: 400, code: "invalid_json" },
  { name: "an empty body", send: post(""), status: 400, code: "invalid_json" },
  { name: "a body of only whitespace", send: post(" \n\t "), status: 400, code: "invalid_json" },
  { name: "a form-encoded body sent as JSON", send: post("type=noop&priority=1"), status: 400, code: "invalid_json" },
  { name: "a null body", send: post("null"), status: 400, code: "invalid_request" },
  { name: "an array body", send: post('[{"type":"noop"}]'), status: 400, code: "invalid_request" },
  { name: "a number body", send: post("42"), status: 400, code: "invalid_request" },
  { name: "a string body", send: post('"noop"'), status: 400, code: "invalid_request" },
  { name: "a boolean body", send: post("true"), status: 400, code: "invalid_request" },
  { name: "invalid UTF-8 in the body (app)", send: post(new Uint8Array([...Buffer.from('{"type":"noop","payload":"'), 0xff, 0xfe, 0x22, 0x7d])), status: 400, code: "invalid_json" },

  // ---- wrong types and values
  { name: "a missing type", send: postJob({ payload: 1 }), status: 400, code: "invalid_request" },
  { name: "a numeric type", send: postJob({ type: 7 }), status: 400, code: "invalid_request" },
  { name: "an object as type", send: postJob({ type: { $ne: null } }), status: 400, code: "invalid_request" },
  { name: "an unknown type", send: postJob({ type: "nope" }), status: 400, code: "invalid_request" },
  { name: "a type with a NUL byte", send: postJob({ type: "noop\u0000" }), status: 400, code: "invalid_request" },
  { name: "a type spelt with a Cyrillic homoglyph", send: postJob({ type: "n\u043e\u043ep" }), status: 400, code: "invalid_request" },
  { name: "a type of 10,000 characters", send: postJob({ type: "n".repeat(10_000) }), status: 400, code: "invalid_request" },
  { name: "a priority given as a string", send: postJob({ type: "noop", priority: "5" }), status: 400, code: "invalid_request" },
  { name: "a priority of 1e400 (Infinity once parsed)", send: post('{"type":"noop","priority":1e400}'), status: 400, code: "invalid_request" },
  { name: "a priority of 2^53 + 1", send: post('{"type":"noop","priority":9007199254740993}'), status: 400, code: "invalid_request" },
  { name: "a negative priority", send: postJob({ type: "noop", priority: -1 }), status: 400, code: "invalid_request" },
  { name: "a fractional priority", send: postJob({ type: "noop", priority: 1.5 }), status: 400, code: "invalid_request" },
  { name: 'a priority of "NaN"', send: postJob({ type: "noop", priority: "NaN" }), status: 400, code: "invalid_request" },
  { name: 'a delayMs of "Infinity"', send: postJob({ type: "noop", delayMs: "Infinity" }), status: 400, code: "invalid_request" },
  { name: "a delayMs of -1e400", send: post('{"type":"noop","delayMs":-1e400}'), status: 400, code: "invalid_request" },
  { name: "a maxAttempts of 2^53 + 1", send: post('{"type":"noop","maxAttempts":9007199254740993}'), status: 400, code: "invalid_request" },
  { name: "a timeoutMs that underflows to -0", send: post('{"type":"noop","timeoutMs":-1e-400}'), status: 400, code: "invalid_request" },
  { name: 'a runAt of "NaN"', send: postJob({ type: "noop", runAt: "NaN" }), status: 400, code: "invalid_request" },
  { name: "a runAt past the end of JavaScript time", send: postJob({ type: "noop", runAt: "+275760-09-13T00:00:00.001Z" }), status: 400, code: "invalid_request" },
  { name: "a runAt given as epoch milliseconds", send: postJob({ type: "noop", runAt: 1893456000000 }), status: 400, code: "invalid_request" },

  // ---- strings that are not well-formed Unicode (a lone UTF-16 surrogate, sent as a JSON escape)
  { name: "an idempotency key with a lone high surrogate", send: postJob({ type: "noop", idempotencyKey: "k\ud800" }), status: 400, code: "invalid_request" },
  { name: "an idempotency key with a lone low surrogate", send: postJob({ type: "noop", idempotencyKey: "k\udc00" }), status: 400, code: "invalid_request" },
  { name: "an idempotency key with its surrogates swapped", send: postJob({ type: "noop", idempotencyKey: "k\ude80\ud83d" }), status: 400, code: "invalid_request" },
  { name: "a type with a lone surrogate", send: postJob({ type: "noop\ud800" }), status: 400, code: "invalid_request" },
  { name: "a payload that is a lone surrogate", send: postJob({ type: "noop", payload: "\ud800" }), status: 400, code: "invalid_request" },
  { name: "a lone surrogate deep in a payload", send: postJob({ type: "noop", payload: { a: [1, { b: ["x", "y\udfff"] }] } }), status: 400, code: "invalid_request" },
  { name: "a lone surrogate in a payload's member name", send: postJob({ type: "noop", payload: { ok: 1, ["k\ud800"]: 2 } }), status: 400, code: "invalid_request" },
  { name: "a lone surrogate in one payload of a batch", send: postJob({ jobs: [{ type: "noop" }, { type: "noop", payload: ["\ud800"] }] }), status: 400, code: "invalid_request" },
  { name: "a lone surrogate in one idempotency key of a batch", send: postJob({ jobs: [{ type: "noop", idempotencyKey: "a" }, { type: "noop", idempotencyKey: "\udbff" }] }), status: 400, code: "invalid_request" },
  { name: "GET /dead?type= with a lone surrogate (percent-encoded UTF-8 of U+D800)", send: get("/dead?type=%ED%A0%80"), status: 400, code: "invalid_request" },
  { name: "GET /dead?after= with a lone surrogate", send: get("/dead?after=1%ED%A0%80"), status: 400, code: "invalid_request" },
  { name: "POST /dead/retry?type= with a lone surrogate", send: get("/dead/retry?type=noop%ED%B0%80", "POST"), status: 400, code: "invalid_request" },

  // ---- unknown, duplicate and prototype-polluting keys
  { name: "an unknown field", send: postJob({ type: "noop", url: "http://169.254.169.254/" }), status: 400, code: "invalid_request" },
  { name: "a __proto__ key in the body", send: post('{"type":"noop","__proto__":{"priority":100,"polluted":true}}'), status: 400, code: "invalid_request" },
  { name: "a constructor key in the body", send: post('{"type":"noop","constructor":{"prototype":{"polluted":true}}}'), status: 400, code: "invalid_request" },
  { name: "a __proto__ key in a batch job", send: post('{"jobs":[{"type":"noop","__proto__":{"polluted":true}}]}'), status: 400, code: "invalid_request" },
  { name: "a __proto__ key beside a batch", send: post('{"jobs":[{"type":"noop"}],"__proto__":{"polluted":true}}'), status: 400, code: "invalid_request" },
  { name: "a duplicate type key whose last value is unknown", send: post('{"type":"noop","type":"nope"}'), status: 400, code: "invalid_request" },
  { name: "a duplicate priority key whose last value is out of range", send: post('{"type":"noop","priority":1,"priority":1000}'), status: 400, code: "invalid_request" },
  { name: "a duplicate priority key whose values are both good", send: post('{"type":"noop","priority":1,"priority":2}'), status: 400, code: "invalid_request" },
  { name: "a payload given twice", send: post('{"type":"noop","payload":{"a":1},"payload":2}'), status: 400, code: "invalid_request" },
  { name: "a payload that repeats a member name", send: post('{"type":"noop","payload":{"to":"a@b.c","to":"x@evil.example"}}'), status: 400, code: "invalid_request" },
  { name: "a payload that repeats a member name spelt with an escape", send: post('{"type":"noop","payload":{"a":[{"b":1,"\\u0062":2}]}}'), status: 400, code: "invalid_request" },
  { name: "a batch job's payload that repeats a member name", send: post('{"jobs":[{"type":"noop"},{"type":"noop","payload":{"k":1,"k":1}}]}'), status: 400, code: "invalid_request" },

  // ---- depth and size
  { name: "a payload nested 200,000 levels deep", send: post(`{"type":"noop","payload":${deep(200_000, "[", "]")}}`), status: 400, code: "invalid_request" },
  { name: "a body that is arrays nested 200,000 levels deep", send: post(deep(200_000, "[", "]")), status: 400, code: "invalid_request" },
  { name: "a body that is objects nested 100,000 levels deep", send: post(deep(100_000, '{"a":', "}", "1")), status: 400, code: "invalid_request" },
  { name: "a payload over 256 KiB", send: postJob({ type: "noop", payload: "x".repeat(262_144) }), status: 400, code: "invalid_request" },
  { name: "a payload over 256 KiB only by the spaces in its text", send: post(`{"type":"noop","payload":[${" ".repeat(262_143)}]}`), status: 400, code: "invalid_request" },
  { name: "a payload over 256 KiB only by its UTF-8 bytes", send: postJob({ type: "noop", payload: "é".repeat(131_072) }), status: 400, code: "invalid_request" },
  { name: "a body over the limit with an honest content-length", send: post(tooBig, { ...json, "content-length": String(tooBig.length) }), status: 413, code: "payload_too_large" },
  { name: "a body over the limit behind a lying content-length", send: post(tooBig, { ...json, "content-length": "10" }), status: 413, code: "payload_too_large" },

  // ---- content types
  { name: "a text/plain body", send: post('{"type":"noop"}', { "content-type": "text/plain" }), status: 415, code: "unsupported_media_type" },
  { name: "a body without a content type", send: post('{"type":"noop"}', {}), status: 415, code: "unsupported_media_type" },
  { name: "an application/jsonx content type", send: post('{"type":"noop"}', { "content-type": "application/jsonx" }), status: 415, code: "unsupported_media_type" },
  { name: "a multipart form", send: post('{"type":"noop"}', { "content-type": "multipart/form-data; boundary=x" }), status: 415, code: "unsupported_media_type" },
  { name: "a list of content types", send: post('{"type":"noop"}', { "content-type": "text/plain, application/json" }), status: 415, code: "unsupported_media_type" },

  // ---- batches
  { name: "a batch of 1,001 jobs", send: postJob({ jobs: Array.from({ length: 1001 }, () => ({ type: "noop" })) }), status: 400, code: "invalid_request" },
  { name: "an empty batch", send: postJob({ jobs: [] }), status: 400, code: "invalid_request" },
  { name: "a batch whose jobs are an object", send: postJob({ jobs: { 0: { type: "noop" } } }), status: 400, code: "invalid_request" },
  { name: "a batch whose jobs are null", send: postJob({ jobs: null }), status: 400, code: "invalid_request" },
  { name: "a batch with a job's field beside it", send: postJob({ jobs: [{ type: "noop" }], type: "noop" }), status: 400, code: "invalid_request" },
  { name: "a batch with one bad job among good ones", send: postJob({ jobs: [{ type: "noop" }, { type: "noop" }, { type: "noop", priority: 101 }] }), status: 400, code: "invalid_request" },

  // ---- ids in paths
  { name: "GET /jobs/../x", send: get("/jobs/../x"), status: 404, code: "not_found" },
  { name: "GET /jobs/%2e%2e%2fsubmit", send: get("/jobs/%2e%2e%2fsubmit"), status: 400, code: "invalid_id" },
  { name: "GET /jobs/%00", send: get("/jobs/%00"), status: 400, code: "invalid_id" },
  { name: "GET /jobs/%zz", send: get("/jobs/%zz"), status: 400, code: "invalid_id" },
  { name: "GET /jobs/1e3", send: get("/jobs/1e3"), status: 400, code: "invalid_id" },
  { name: "GET /jobs/-1", send: get("/jobs/-1"), status: 400, code: "invalid_id" },
  { name: "GET /jobs/0x1F", send: get("/jobs/0x1F"), status: 400, code: "invalid_id" },
  { name: "GET /jobs/%201", send: get("/jobs/%201"), status: 400, code: "invalid_id" },
  { name: "GET /jobs/ with a 100,000-digit id", send: get(`/jobs/${"9".repeat(100_000)}`), status: 400, code: "invalid_id" },

  // ---- routes and methods
  { name: "PATCH /submit", send: () => viaApp("/submit", { method: "PATCH", headers: json, body: '{"type":"noop"}' }), status: 405, code: "method_not_allowed" },
  { name: "PUT /submit", send: () => viaApp("/submit", { method: "PUT", headers: json, body: '{"type":"noop"}' }), status: 405, code: "method_not_allowed" },
  { name: "DELETE /health", send: get("/health", "DELETE"), status: 405, code: "method_not_allowed" },
  { name: "PUT /jobs/1", send: get("/jobs/1", "PUT"), status: 405, code: "method_not_allowed" },
  { name: "DELETE /jobs/1e3", send: get("/jobs/1e3", "DELETE"), status: 400, code: "invalid_id" },
  { name: "DELETE /jobs/424242 (unknown)", send: get("/jobs/424242", "DELETE"), status: 404, code: "not_found" },
  { name: "DELETE /dead/%00", send: get("/dead/%00", "DELETE"), status: 400, code: "invalid_id" },
  { name: "GET /dead?limit=1e3", send: get("/dead?limit=1e3"), status: 400, code: "invalid_request" },
  { name: "POST /dead/retry without a type", send: get("/dead/retry", "POST"), status: 400, code: "invalid_request" },
  { name: "POST /metrics", send: () => viaApp("/metrics", { method: "POST", body: "x" }), status: 405, code: "method_not_allowed" },
  { name: "OPTIONS /submit", send: get("/submit", "OPTIONS"), status: 405, code: "method_not_allowed" },
  { name: "GET /nope", send: get("/nope"), status: 404, code: "not_found" },
  { name: "POST /submit/ (trailing slash)", send: () => viaApp("/submit/", { method: "POST", headers: json, body: '{"type":"noop"}' }), status: 404, code: "not_found" },
  { name: "POST /SUBMIT", send: () => viaApp("/SUBMIT", { method: "POST", headers: json, body: '{"type":"noop"}' }), status: 404, code: "not_found" },
  { name: "a path of 100,000 characters", send: get(`/${"a".repeat(100_000)}`), status: 404, code: "not_found" },

  // ---- raw bytes over TCP (what app.request cannot express)
  { name: "invalid UTF-8 bytes in the body (TCP)", send: rawPost(new Uint8Array([...Buffer.from('{"type":"noop","payload":"'), 0xc3, 0x28, 0x22, 0x7d])), status: 400, code: "invalid_json" },
  { name: "an overlong UTF-8 encoding of '/' in the body (TCP)", send: rawPost(new Uint8Array([...Buffer.from('{"type":"noop","payload":"'), 0xc0, 0xaf, 0x22, 0x7d])), status: 400, code: "invalid_json" },
  { name: "a UTF-8 surrogate half in the body (TCP)", send: rawPost(new Uint8Array([...Buffer.from('{"type":"noop","payload":"'), 0xed, 0xa0, 0x80, 0x22, 0x7d])), status: 400, code: "invalid_json" },
  { name: "invalid UTF-8 bytes in the path (TCP)", send: tcp(Buffer.concat([Buffer.from("GET /jobs/"), Buffer.from([0xff, 0xfe]), Buffer.from(` HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`)])), status: 400, code: "invalid_id" },
  { name: "a content-length shorter than the body (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{"type":"noop"}`), status: 400, code: "invalid_json" },
  { name: "a content-length just over the limit (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${BODY_LIMIT + 1}\r\n\r\n{}`), status: 413, code: "payload_too_large" },
  { name: "a chunked body that grows past the limit (TCP)", send: tcp(chunked([...Array<number>(16).fill(0xffff), 516])), status: 413, code: "payload_too_large" },
  { name: "a chunked body of 4 MiB (TCP)", send: tcp(chunked(Array<number>(64).fill(0x10000))), status: 413, code: "payload_too_large" },
  { name: "a submit without the token (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"type":"noop"}`), status: 401, code: "unauthorized" },
  { name: "a submit with the token in the query string (TCP)", send: tcp(`POST /submit?access_token=${TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"type":"noop"}`), status: 401, code: "unauthorized" },
  { name: "an absolute-form target naming another host (TCP)", send: tcp(`GET http://169.254.169.254/jobs/424242 HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`), status: 404, code: "not_found" },
  { name: "a CONNECT tunnel request (TCP)", send: tcp(`CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n${AUTH}\r\n`), status: 404, code: "not_found" },
  { name: "an HTTP/1.0 request without a Host header is routed by its own path (TCP)", send: tcp(`GET /ab/health HTTP/1.0\r\n${AUTH}\r\n`), status: 404, code: "not_found" },
  { name: "a Host header that is not a host name (TCP)", send: tcp(Buffer.from(`GET /jobs/1e3 HTTP/1.1\r\nHost: \xe9vil\r\n${AUTH}\r\n`, "latin1")), status: 400, code: "invalid_id" },
  { name: "a content-length longer than the body (TCP): the server stops waiting", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":"noop"}`, 30_000), status: 0 },
  { name: "a content-length of 4 MiB (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${BODY_LIMIT * 4}\r\n\r\n{}`), status: 413, code: "payload_too_large" },
  { name: "a content-length of 10 GB, and no body sent (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n`), status: 413, code: "payload_too_large" },
  { name: "a content-length over the limit on a route that reads no body (TCP)", send: tcp(`POST /dead/retry?type=noop HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${BODY_LIMIT + 1}\r\n\r\n{}`), status: 413, code: "payload_too_large" },
  { name: "a content-length over the limit on GET /health (TCP)", send: tcp(`GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: ${BODY_LIMIT * 2}\r\n\r\n`), status: 413, code: "payload_too_large" },
  // Bun's HTTP parser answers these itself, before any JavaScript runs, with a bare status line
  // (no body, no content type) and closes the connection; nothing in Bun.serve can shape them:
  // malformed request lines and headers (400), a content-length that overflows 64 bits (400), an
  // unknown transfer-encoding (400), request headers or URL over Bun's 16 KiB header limit (431),
  // and HTTP versions other than 1.0 and 1.1 (505).
  { name: "both content-length and transfer-encoding (TCP, request smuggling)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\nf\r\n{"type":"noop"}\r\n0\r\n\r\n`), status: 400 },
  { name: "two different content-lengths (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 15\r\nContent-Length: 2\r\n\r\n{"type":"noop"}`), status: 400 },
  { name: "a malformed chunk size (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"type":"noop"}\r\n0\r\n\r\n`), status: 400 },
  { name: "a request line that is not HTTP (TCP)", send: tcp("HELLO\r\n\r\n"), status: 400 },
  { name: "a header line without a colon (TCP)", send: tcp(`GET /health HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n`), status: 400 },
  { name: "a 200 KB header (TCP)", send: tcp(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(200_000)}\r\n\r\n`), status: 431 },
  { name: "a 20 KB URL (TCP)", send: tcp(`GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`), status: 431 },
  { name: "a content-length of 20 digits (TCP)", send: tcp(`POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n`), status: 400 },
  { name: "an HTTP/2.0 request line (TCP)", send: tcp(`GET /health HTTP/2.0\r\nHost: x\r\n\r\n`), status: 505 },
];

async function goodSubmit(): Promise<number> {
  const res = await fetch(`${s.server.url}/submit`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ type: "noop", payload: { ok: true } }),
  });
  await res.text();
  return res.status;
}

for (const kind of STORE_KINDS) {
describe(`on ${kind}`, () => {
  /** What the server logged at error level: reserved for its own faults, never for what a client sent. */
  const errors: string[] = [];
  beforeAll(async () => {
    // A short idle timeout so the row that promises more body than it sends ends quickly.
    const logger = createLogger("error", (line) => void errors.push(line));
    s = await startTestServer({ store: kind, env: { JOBQUEUE_TOKEN: TOKEN }, args: ["--idle-timeout-s", "1"], logger });
  });
  afterAll(async () => s.stop());

  describe("hostile requests", () => {
    test("the table has at least 40 rows, some of them over real TCP", () => {
      expect(rows.length).toBeGreaterThanOrEqual(40);
      expect(rows.filter((r) => r.name.includes("(TCP")).length).toBeGreaterThanOrEqual(10);
    });

    for (const row of rows) {
      const outcome = row.status === 0 ? "is cut off" : `gets ${row.status}${row.code ? ` ${row.code}` : ""}`;
      test(`${row.name} ${outcome}, stores nothing, and the server then takes a good submit`, async () => {
        const before = await s.rows();
        const answer = await row.send();
        expect(answer.status).toBe(row.status);
        if (row.status === 0) expect(answer.closed).toBe(true);
        if (row.code !== undefined) {
          expect(answer.contentType).toContain("application/json");
          const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
          expect(body.error.code).toBe(row.code);
          expect(typeof body.error.message).toBe("string");
        }
        expect(await s.rows()).toBe(before);
        expect(await goodSubmit()).toBe(202);
        expect(await s.rows()).toBe(before + 1);
      }, 60_000);
    }

    test("a body refused for its size leaves the connection serving the next request", async () => {
      const before = await s.rows();
      const next = `GET /health HTTP/1.1\r\nHost: x\r\n\r\n`;
      const big = "a".repeat(BODY_LIMIT + 1);
      const declared = `POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`;
      const elsewhere = `POST /dead/retry?type=noop HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`;
      for (const refused of [declared, elsewhere, chunked(Array<number>(20).fill(0x10000))]) {
        const { responses } = await rawExchange(s.server.port, refused + next, 2);
        expect(responses.map((r) => r.status)).toEqual([413, 200]);
        expect(JSON.parse(responses[0]!.body)).toMatchObject({ error: { code: "payload_too_large" } });
        expect(JSON.parse(responses[1]!.body)).toEqual({ status: "ok" });
      }
      expect(await s.rows()).toBe(before);
    }, 60_000);

    test("a client that hangs up in the middle of a body is no fault of the server's", async () => {
      const before = await s.rows();
      for (const partial of [
        `POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":`,
        `POST /submit HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"typ`,
      ]) {
        // The request reaches the app (its headers are whole), then the client is gone.
        const answer = await rawRequest(s.server.port, partial, { timeoutMs: 300 });
        expect(answer.status).toBe(0);
      }
      expect(await goodSubmit()).toBe(202);
      expect(await s.rows()).toBe(before + 1);
    });

    test("no request in this file made the server log an error", () => {
      expect(errors).toEqual([]);
    });

    test("no request polluted Object.prototype", () => {
      const probe = {} as Record<string, unknown>;
      expect(probe.polluted).toBeUndefined();
      expect(probe.priority).toBeUndefined();
    });
  });

  describe("hostile payloads that are still valid JSON data", () => {
    test("__proto__ and constructor keys inside a payload are stored and shown as plain data", async () => {
      const payload = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"a":1}';
      const res = await s.server.app.request("/submit", { method: "POST", headers: json, body: `{"type":"noop","payload":${payload}}` });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const job = await s.server.app.request(`/jobs/${id}`);
      const text = await job.text();
      expect(text).toContain(`"payload":${payload}`);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    test("NUL characters, escaped surrogate pairs and huge numbers in a payload round-trip as JSON", async () => {
      const payload = '{"z":"a\\u0000b","pair":"\\ud83d\\ude80","n":1e308,"big":9007199254740993}';
      const res = await s.server.app.request("/submit", { method: "POST", headers: json, body: `{"type":"noop","payload":${payload}}` });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const job = (await (await s.server.app.request(`/jobs/${id}`)).json()) as { payload: Record<string, unknown> };
      expect(job.payload).toEqual({ z: "a\u0000b", pair: "🚀", n: 1e308, big: 9007199254740992 });
    });
  });

  describe("payload size and repeated member names, judged on the text as sent", () => {
    const send = (body: string) => fetch(`${s.server.url}/submit`, { method: "POST", headers: { ...json, authorization: `Bearer ${TOKEN}` }, body });
    async function message(body: string): Promise<string> {
      const res = await send(body);
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { message: string } }).error.message;
    }

    test("a 400 names the field, and inside a payload the path, of a repeated member name", async () => {
      const before = await s.rows();
      expect(await message('{"type":"noop","type":"noop"}')).toBe('body: has the member "type" twice');
      expect(await message('{"jobs":[{"type":"noop"},{"type":"noop","delayMs":1,"delayMs":2}]}')).toBe('jobs[1]: has the member "delayMs" twice');
      expect(await message('{"type":"noop","payload":{"a":[0,{"x":1,"y":2,"x":3}]}}')).toBe('payload: has the member "x" twice (at $.a[1])');
      expect(await message('{"jobs":[{"type":"noop","payload":{"k":1,"k":1}}]}')).toBe('jobs[0].payload: has the member "k" twice');
      expect(await s.rows()).toBe(before);
    });

    test("a payload of exactly 256 KiB as sent is taken, spaces and all, and one byte more is not", async () => {
      const before = await s.rows();
      const fits = `[${" ".repeat(262_142)}]`;
      expect(fits.length).toBe(262_144);
      expect(await message(`{"type":"noop","payload":[ ${fits.slice(1)}}`)).toBe("payload: must be at most 262144 bytes of JSON as sent");
      const res = await send(`{"type":"noop","payload":  ${fits}  }`);
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const view = await (await fetch(`${s.server.url}/jobs/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      expect(view.endsWith(`,"payload":${fits}}`)).toBe(true);
      expect(await s.rows()).toBe(before + 1);
    });
  });

  describe("strings that are not well-formed Unicode", () => {
    async function refusal(body: string): Promise<string> {
      const res = await fetch(`${s.server.url}/submit`, { method: "POST", headers: { ...json, authorization: `Bearer ${TOKEN}` }, body });
      expect(res.status).toBe(400);
      const answer = (await res.json()) as { error: { code: string; message: string } };
      expect(answer.error.code).toBe("invalid_request");
      return answer.error.message;
    }

    test("a 400 names the field, and inside a payload the JSON path, of the lone surrogate", async () => {
      const before = await s.rows();
      expect(await refusal('{"type":"noop","idempotencyKey":"k\\ud800"}')).toBe("idempotencyKey: contains a lone UTF-16 surrogate");
      expect(await refusal('{"type":"noop","payload":{"a":[1,2,3,"x\\udc00"]}}')).toBe("payload: contains a lone UTF-16 surrogate (at $.a[3])");
      expect(await refusal('{"type":"noop","payload":{"a b":{"k\\ud800":1}}}')).toBe('payload: contains a lone UTF-16 surrogate in a member name (at $["a b"]["k\\ud800"])');
      expect(await refusal('{"jobs":[{"type":"noop"},{"type":"noop"},{"type":"noop","payload":"\\ud800"}]}')).toBe("jobs[2].payload: contains a lone UTF-16 surrogate");
      expect(await refusal('{"jobs":[{"type":"noop","idempotencyKey":"ok"},{"type":"noop","idempotencyKey":"\\udfffx"}]}')).toBe("jobs[1].idempotencyKey: contains a lone UTF-16 surrogate");
      expect(await s.rows()).toBe(before);
    });

    test("two keys that differ only in their lone surrogate are both refused, never taken for one", async () => {
      const before = await s.rows();
      await refusal('{"type":"noop","idempotencyKey":"k\\ud800"}');
      await refusal('{"type":"noop","idempotencyKey":"k\\udc00"}');
      expect(await s.rows()).toBe(before);
      // A well-formed key with the same look (U+FFFD, what SQLite made of the surrogate) is its own key.
      const first = await fetch(`${s.server.url}/submit`, { method: "POST", headers: { ...json, authorization: `Bearer ${TOKEN}` }, body: '{"type":"noop","idempotencyKey":"k\uFFFD"}' });
      expect(first.status).toBe(202);
      const again = await fetch(`${s.server.url}/submit`, { method: "POST", headers: { ...json, authorization: `Bearer ${TOKEN}` }, body: '{"type":"noop","idempotencyKey":"k\\ufffd"}' });
      expect(again.status).toBe(200);
      expect((await again.json()) as unknown).toEqual({ id: ((await first.json()) as { id: string }).id, duplicate: true });
      expect(await s.rows()).toBe(before + 1);
    });
  });
});
}
