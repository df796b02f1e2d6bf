// reload.binary.test.ts: SIGHUP on the compiled binary reads the types file again: an added type is
// accepted and runs, a changed one takes its new policy, a dropped one's waiting jobs wait (shown in
// GET /types and waitingFor) until it returns, and an invalid file keeps the running configuration
// with one clear error; /metrics shows the file's hash and each reload's outcome.
import { afterEach, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBinary, type RunningBinary } from "./support/binary.ts";
import { waitFor } from "./support/wait.ts";

const nodes: RunningBinary[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    n.proc.kill("SIGTERM");
    await n.exited;
  }
});

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

test("SIGHUP reloads the types file: added, changed and dropped types, and a bad file keeps the running one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jq-reload-"));
  const file = join(dir, "jobs.toml");
  const first = '[types.a]\nbuiltin = "noop"\nmax_attempts = 2\n';
  writeFileSync(file, first);
  const node = await startBinary(["serve", "--config", file], { PORT: "0", DATABASE_URL: `sqlite://${join(dir, "jobs.db")}`, JOBQUEUE_KEEP_COMPLETED: "1h" });
  nodes.push(node);
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${node.url}${path}`, {
      method, ...(body !== undefined && { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith("{") ? JSON.parse(text) : text };
  };
  const metrics = async () => (await api("GET", "/metrics")).body as string;
  const reloads = async (outcome: string) => Number((await metrics()).match(new RegExp(`^jobqueue_config_reloads_total\\{outcome="${outcome}"\\} (\\d+)`, "m"))?.[1] ?? 0);
  expect(await metrics()).toContain(`jobqueue_config_info{hash="${sha256(first)}"} 1`);
  expect((await api("POST", "/submit", { type: "b" })).status).toBe(400);

  // Added and changed.
  const second = '[types.a]\nbuiltin = "noop"\nmax_attempts = 7\n\n[types.b]\nbuiltin = "noop"\n';
  writeFileSync(file, second);
  node.proc.kill("SIGHUP");
  await waitFor(async () => (await reloads("ok")) === 1, { what: "the first reload" });
  expect(await metrics()).toContain(`jobqueue_config_info{hash="${sha256(second)}"} 1`);
  const b = await api("POST", "/submit", { type: "b" });
  expect(b.status).toBe(202);
  await waitFor(async () => (await api("GET", `/jobs/${b.body.id}`)).body.state === "completed", { what: "b to run" });
  expect((await api("GET", `/jobs/${(await api("POST", "/submit", { type: "a" })).body.id}`)).body.maxAttempts).toBe(7);
  expect(node.logs.some((l) => l.msg === "types file reloaded" && JSON.stringify(l.added) === '["b"]' && JSON.stringify(l.changed) === '["a"]')).toBe(true);

  // A bad file: one error, nothing changes.
  writeFileSync(file, '[types.a]\nbuiltin = "nope"\n');
  node.proc.kill("SIGHUP");
  await waitFor(async () => (await reloads("failed")) === 1, { what: "the failed reload" });
  const errors = node.logs.filter((l) => l.level === "error");
  expect(errors).toHaveLength(1);
  expect(String(errors[0]!.err)).toContain("types.a.builtin");
  expect(await metrics()).toContain(`jobqueue_config_info{hash="${sha256(second)}"} 1`);
  expect((await api("POST", "/submit", { type: "b" })).status).toBe(202);

  // Dropped while a job of it waits: the job waits (not dead), visible, until the type comes back.
  const later = await api("POST", "/submit", { type: "b", delayMs: 500 });
  writeFileSync(file, first);
  node.proc.kill("SIGHUP");
  await waitFor(async () => (await reloads("ok")) === 2, { what: "the second reload" });
  expect((await api("POST", "/submit", { type: "b" })).status).toBe(400);
  await waitFor(async () => (await api("GET", `/jobs/${later.body.id}`)).body.waitingFor === "no_handler", { what: "b's job to wait for a handler" });
  const types = (await api("GET", "/types")).body.types as Array<{ type: string; registered: boolean; waiting: number; policy: unknown }>;
  expect(types.find((t) => t.type === "b")).toMatchObject({ registered: false, waiting: 1, policy: null });
  writeFileSync(file, second);
  node.proc.kill("SIGHUP");
  await waitFor(async () => (await api("GET", `/jobs/${later.body.id}`)).body.state === "completed", { what: "b's job to run once b is back" });
  expect((await api("GET", `/jobs/${later.body.id}`)).body.attempts).toBe(1);
});
