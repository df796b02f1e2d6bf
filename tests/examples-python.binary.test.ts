// examples-python.binary.test.ts: the Python examples (standard library only) against the compiled
// binary with a token: producer.py submits a batch, worker.py pulls and runs every job (POST /claim,
// heartbeats, /complete, /fail) until a claim brings nothing, and each job ends as the worker said:
// completed with its result, or dead with the worker's error. Skipped (never passed) without python3.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBinary, type RunningBinary } from "./support/binary.ts";

const ROOT = join(import.meta.dir, "..");
const PYTHON = Bun.which("python3");
const TOKEN = "python-example-token-0123456789";
const nodes: RunningBinary[] = [];

afterEach(async () => {
  for (const n of nodes.splice(0)) {
    n.proc.kill("SIGTERM");
    await n.exited;
  }
});

async function python(script: string, args: string[], url: string): Promise<string> {
  const proc = Bun.spawn([PYTHON!, join(ROOT, "examples", "python", script), "--url", url, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", JOBQUEUE_TOKEN: TOKEN },
    stdout: "pipe", stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${err}`);
  return out;
}

test.skipIf(PYTHON === null)("producer.py submits and worker.py runs every job through the pull API of the binary", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jq-python-"));
  const node = await startBinary(["serve", "--config", join(ROOT, "examples", "python", "jobqueue.toml")], {
    PORT: "0", DATABASE_URL: `sqlite://${join(dir, "jobs.db")}`, JOBQUEUE_TOKEN: TOKEN, JOBQUEUE_KEEP_COMPLETED: "1h",
  });
  nodes.push(node);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const ids = (await python("producer.py", ["--count", "25", "--text", "abc"], node.url)).trim().split("\n");
  expect(ids).toHaveLength(25);
  // One job the worker cannot do: it fails it for good (retry: false).
  const bad = await fetch(`${node.url}/submit`, {
    method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ type: "reverse", payload: { n: 1 } }),
  });
  expect(bad.status).toBe(202);
  const badId = ((await bad.json()) as { id: string }).id;

  const lines = (await python("worker.py", ["--exit-when-idle", "--wait-ms", "2000", "--lease-ms", "3000", "--max", "10"], node.url)).trim().split("\n");
  const reports = lines.map((l) => JSON.parse(l) as { id: string; attempt: number; state: string });
  expect(reports.map((r) => r.id).sort()).toEqual([...ids, badId].sort());

  for (const [n, id] of ids.entries()) {
    const job = (await (await fetch(`${node.url}/jobs/${id}`, { headers: auth })).json()) as { state: string; result: string };
    expect(job).toMatchObject({ state: "completed", result: `abc #${n}`.split("").reverse().join("") });
  }
  const dead = (await (await fetch(`${node.url}/jobs/${badId}`, { headers: auth })).json()) as { state: string; lastError: string; attempts: number };
  expect(dead).toMatchObject({ state: "dead", attempts: 1, lastError: 'expected a payload like {"text": "..."}' });
});
