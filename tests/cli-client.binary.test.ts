// cli-client.binary.test.ts: the client subcommands of the compiled executable (submit, stats,
// dead list|retry|purge, types [pause|resume]) against a running server binary behind a token; plus their argument
// parsing, which is pure.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseClientArgs } from "../src/client/cli.ts";
import { ConfigError } from "../src/errors.ts";
import { ensureBinary, startBinary, type RunningBinary } from "./support/binary.ts";
import { waitFor } from "./support/wait.ts";

const TOKEN = "cli-client-token-0123456789abcdef";
let bin: string;
let dir: string;
let server: RunningBinary;

beforeAll(async () => {
  bin = await ensureBinary();
  dir = mkdtempSync(join(tmpdir(), "jq-cli-client-"));
  const types = join(dir, "jobs.toml");
  writeFileSync(types, '[types.noop]\nbuiltin = "noop"\n\n[types.doomed]\ncommand = ["/bin/sh", "-c", "echo broken >&2; exit 3"]\nmax_attempts = 1\n');
  server = await startBinary(["--port", "0", "--config", types, "--db", join(dir, "jobs.db"), "--keep-completed", "1h"], { JOBQUEUE_TOKEN: TOKEN }, dir);
});
afterAll(async () => {
  server.proc.kill("SIGTERM");
  await server.exited;
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = { JOBQUEUE_TOKEN: TOKEN }) {
  const p = Bun.spawn([bin, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? "", JOBQUEUE_URL: server.url, ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  let json: any = null;
  try {
    json = JSON.parse(stdout);
  } catch {
    // Not JSON (help text, or nothing).
  }
  return { stdout, stderr, code, json };
}

describe("client commands on the binary", () => {
  test("submit sends a job with its payload and priority and prints its id; a held idempotency key says duplicate", async () => {
    const r = await cli(["submit", "noop", "--payload", '{"to":"a@b.c"}', "--priority", "7", "--idempotency-key", "cli-1"]);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ id: expect.stringMatching(/^\d+$/) });
    const again = await cli(["submit", "noop", "--idempotency-key=cli-1", "--url", server.url]);
    expect(again.json).toEqual({ id: r.json.id, duplicate: true });
    const job = await (await fetch(`${server.url}/jobs/${r.json.id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { priority: number };
    expect(job.priority).toBe(7);
  });

  test("submit passes a flow-control key and a deadline", async () => {
    const r = await cli(["submit", "noop", "--key", "tenant-9", "--ttl-ms", "600000", "--delay-ms", "60000"]);
    expect(r.code).toBe(0);
    const job = await (await fetch(`${server.url}/jobs/${r.json.id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as Record<string, unknown>;
    expect(job).toMatchObject({ key: "tenant-9", state: "scheduled", waitingFor: "scheduled" });
    expect(typeof job.expiresAt).toBe("string");
    // Cancelled, so the counts other tests read are theirs alone.
    expect((await fetch(`${server.url}/jobs/${r.json.id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(204);
    const late = await cli(["submit", "noop", "--expires-at", "2001-01-01T00:00:00Z"]);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain("expire");
  });

  test("stats prints the counts; dead list, retry and purge act on one type", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await cli(["submit", "doomed"])).json.id);
    await waitFor(async () => (await cli(["stats"])).json?.types?.doomed?.dead === 3, { what: "three dead" });
    const stats = await cli(["stats"]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toContain('\n  "jobs": {');
    const page = await cli(["dead", "list", "--type", "doomed", "--limit", "2"]);
    expect(page.json.jobs.map((j: { id: string }) => j.id)).toEqual(ids.slice(0, 2));
    expect(page.json.jobs[0].lastError).toBe("command exited with code 3: broken");
    expect(page.json.next).toBe(ids[1]);
    expect((await cli(["dead", "list", "--type", "doomed", "--after", ids[1]!])).json.jobs.map((j: { id: string }) => j.id)).toEqual([ids[2]]);
    expect((await cli(["dead", "retry", ids[0]!])).json).toEqual({ id: ids[0] });
    await waitFor(async () => (await cli(["stats"])).json?.types?.doomed?.dead === 3, { what: "it died again" });
    expect((await cli(["dead", "retry", "--type", "doomed"])).json).toEqual({ count: 3 });
    await waitFor(async () => (await cli(["stats"])).json?.types?.doomed?.dead === 3, { what: "all dead again" });
    expect((await cli(["dead", "purge", ids[2]!])).json).toEqual({ id: ids[2] });
    const gone = await cli(["dead", "purge", ids[2]!]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("is not a dead job");
    expect((await cli(["dead", "purge", "--type", "doomed"])).json).toEqual({ count: 2 });
    expect((await cli(["stats"])).json.types.doomed).toBeUndefined();
  });

  test("types lists every type with its policy and state; types pause and resume change it, and an unknown type fails", async () => {
    const list = await cli(["types"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('\n  "types": [');
    expect(list.json.types.map((t: { type: string; paused: boolean }) => [t.type, t.paused])).toEqual([["doomed", false], ["noop", false]]);
    expect(list.json.types[0].policy).toMatchObject({ maxAttempts: 1 });
    expect((await cli(["types", "pause", "noop"])).json).toEqual({ type: "noop", paused: true });
    const held = (await cli(["submit", "noop"])).json.id;
    const waiting = await cli(["types"]);
    expect(waiting.json.types.find((t: { type: string }) => t.type === "noop")).toMatchObject({ paused: true, waiting: 1 });
    expect((await cli(["types", "resume", "noop"])).json).toEqual({ type: "noop", paused: false });
    await waitFor(async () => (await fetch(`${server.url}/jobs/${held}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()
      .then((j) => (j as { state?: string }).state === "completed"), { what: "the held job ran once resumed" });
    const unknown = await cli(["types", "pause", "nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("404 not_found");
  });

  test("a wrong token, an unreachable server and bad arguments fail with one line and their exit code", async () => {
    const unauthorized = await cli(["stats"], { JOBQUEUE_TOKEN: "wrong-token-0123456789abcdef" });
    expect(unauthorized.code).toBe(1);
    expect(unauthorized.stderr).toContain("401 unauthorized");
    expect(unauthorized.stderr).not.toContain("wrong-token");
    const unreachable = await cli(["stats", "--url", "http://127.0.0.1:9"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toStartWith("jobqueue: cannot reach the server");
    const refused = await cli(["submit", "noop", "--priority", "200"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    const badType = await cli(["submit", "nope"]);
    expect(badType.code).toBe(1);
    expect(badType.stderr).toContain('400 invalid_request: type: unknown job type "nope"');
    const help = await cli(["dead", "list", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("jobqueue dead retry");
  });
});

describe("client argument parsing", () => {
  const env = { JOBQUEUE_TOKEN: TOKEN };
  const bad = (argv: string[], message: string, e: Record<string, string> = env) => {
    expect(() => parseClientArgs(argv, e)).toThrow(ConfigError);
    expect(() => parseClientArgs(argv, e)).toThrow(message);
  };

  test("flags beat the environment, which beats the default URL", () => {
    expect(parseClientArgs(["stats"], {})).toMatchObject({ command: "stats", url: "http://127.0.0.1:8080", token: undefined });
    expect(parseClientArgs(["stats"], { JOBQUEUE_URL: "http://q:1", ...env })).toMatchObject({ url: "http://q:1", token: TOKEN });
    expect(parseClientArgs(["stats", "--url", "https://q.example"], { JOBQUEUE_URL: "http://q:1" }).url).toBe("https://q.example");
    expect(parseClientArgs(["dead", "retry", "--type=mail"], {}).flags.get("--type")).toBe("mail");
  });

  test("each command takes only its own options and positional words", () => {
    bad(["submit"], "submit: expected a job type");
    bad(["submit", "a", "b"], 'unexpected argument "b"');
    bad(["stats", "--type", "x"], 'stats: unknown option "--type"');
    bad(["dead"], "dead: expected list, retry or purge");
    bad(["dead", "retry"], "give either --type");
    bad(["dead", "purge", "7", "--type", "x"], "give either --type");
    bad(["dead", "list", "--limit"], "missing value for --limit");
    bad(["stats", "--url", "ftp://x"], "invalid --url");
    bad(["types", "stop", "mail"], "types: expected pause or resume");
    bad(["types", "pause"], "types pause: expected a job type");
    bad(["types", "resume", "a", "b"], 'unexpected argument "b"');
    bad(["types", "mail"], "types: expected pause or resume");
    expect(parseClientArgs(["types"], env)).toMatchObject({ command: "types", words: [] });
    expect(parseClientArgs(["types", "pause", "mail"], env)).toMatchObject({ command: "types pause", words: ["mail"] });
  });

  test("the token follows the server's rules and is never shown", () => {
    bad(["stats", "--token", "short"], 'invalid --token / JOBQUEUE_TOKEN "…"');
    bad(["stats", "--token-file", "/x"], "--token / JOBQUEUE_TOKEN and --token-file / JOBQUEUE_TOKEN_FILE are both set");
    try {
      parseClientArgs(["stats"], { JOBQUEUE_TOKEN: "bad token with spaces" });
    } catch (err) {
      expect((err as Error).message).not.toContain("spaces");
    }
  });
});
