// exec.test.ts: the command handler with small shell scripts: the job on stdin, exit 0 = done with
// the start of stdout as result, other exits failed with the end of stderr, a minimal environment,
// and an abort (timeout) that kills the whole process group; then a command type from a types
// file running on a whole queue node.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createExecHandler, RESULT_LIMIT } from "../src/handlers/exec.ts";
import { jobContext } from "../src/handlers/handler.ts";
import { registryFromTypes } from "../src/handlers/from-config.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import { loadTypesFile, parseTypesConfig } from "../src/config/types-file.ts";
import { call, startQueueWith } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "jq-exec-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const ctx = (over: Partial<{ id: number; payload: string; attempt: number }> = {}) =>
  jobContext({ id: over.id ?? 7, type: "resize", payloadText: over.payload ?? '{"w":64}', attempt: over.attempt ?? 2, maxAttempts: 5, priority: 0, createdAt: 0 });

/** Whether a process is still there (signal 0 probes without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the command handler", () => {
  test("the job arrives as JSON on stdin, and a clean exit's stdout is the result", async () => {
    const run = createExecHandler({ command: [script("echo.sh", "cat")], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    const result = await run(ctx(), new AbortController().signal);
    expect(JSON.parse(result as string)).toEqual({ id: "7", type: "resize", payload: { w: 64 }, attempt: 2, maxAttempts: 5 });
  });

  test("only the first 4 KiB of stdout are kept, and a program that ignores stdin is fine", async () => {
    const run = createExecHandler({ command: [script("loud.sh", "yes x | tr -d '\\n' | head -c 100000")], env: { PATH: process.env.PATH ?? "" } });
    const result = (await run(ctx(), new AbortController().signal)) as string;
    expect(result).toBe("x".repeat(RESULT_LIMIT));
  });

  test("a failing exit is an error with its code and the end of stderr", async () => {
    const run = createExecHandler({
      command: [script("fail.sh", "i=0; while [ $i -lt 500 ]; do echo \"line $i\" >&2; i=$((i+1)); done; echo 'out of memory' >&2; exit 3")],
      env: { PATH: process.env.PATH ?? "" },
    });
    const err = (await Promise.resolve(run(ctx(), new AbortController().signal)).then(() => null, (e: Error) => e))!;
    expect(err.message).toStartWith("command exited with code 3: ");
    expect(err.message).toEndWith("out of memory");
    expect(err.message).not.toContain("line 0\n");
    expect(err.message.length).toBeLessThan(2200);
  });

  test("the program sees only the environment it is given plus the job's id, type and attempt", async () => {
    const run = createExecHandler({ command: [script("env.sh", "env")], env: { PATH: "/usr/bin:/bin", ONLY_THIS: "1" } });
    const lines = ((await run(ctx({ id: 99 }), new AbortController().signal)) as string).trim().split("\n").sort();
    expect(lines.filter((l) => !l.startsWith("PWD=") && !l.startsWith("SHLVL=") && !l.startsWith("_="))).toEqual([
      "JOBQUEUE_JOB_ATTEMPT=2", "JOBQUEUE_JOB_ID=99", "JOBQUEUE_JOB_TYPE=resize", "ONLY_THIS=1", "PATH=/usr/bin:/bin",
    ]);
  });

  test("an abort kills the program and everything it started (its process group)", async () => {
    const pids = join(dir, "pids");
    const run = createExecHandler({
      command: [script("tree.sh", `sleep 300 & echo $! > ${pids}.child; echo $$ > ${pids}.self; wait`)],
      env: { PATH: process.env.PATH ?? "" },
    });
    const controller = new AbortController();
    const done = Promise.resolve(run(ctx(), controller.signal)).then(() => "resolved", (e: Error) => e.name);
    // The script writes the child's pid, then its own: wait for both.
    const written = (f: string) => existsSync(f) && readFileSync(f, "utf8").trim() !== "";
    await waitFor(() => written(`${pids}.child`) && written(`${pids}.self`), { what: "the tree started" });
    const self = Number(readFileSync(`${pids}.self`, "utf8"));
    const child = Number(readFileSync(`${pids}.child`, "utf8"));
    expect(alive(self) && alive(child)).toBe(true);
    const reason = new Error("timed out after 50 ms");
    reason.name = "TimeoutError";
    controller.abort(reason);
    expect(await done).toBe("TimeoutError");
    await waitFor(() => !alive(child) && !alive(self), { what: "the whole group gone" });
  });

  test("a program that cannot be started is a failed attempt, not a crash", async () => {
    const run = createExecHandler({ command: [join(dir, "missing")], env: {} });
    await expect(Promise.resolve().then(() => run(ctx(), new AbortController().signal))).rejects.toThrow();
  });
});

describe("command types in the types file", () => {
  test("exactly one of url, builtin or command; relative programs resolve against the file's folder", async () => {
    const path = join(dir, "jobs.toml");
    writeFileSync(path, '[types.resize]\ncommand = ["./bin/resize", "--stdin"]\ntimeout = "5s"\n\n[types.abs]\ncommand = ["/usr/bin/env"]\n');
    const types = await loadTypesFile(path, { timeoutMs: 30_000, maxAttempts: 5 });
    expect(types.get("resize")).toEqual({ kind: "exec", command: [join(dir, "bin", "resize"), "--stdin"], timeoutMs: 5000, maxAttempts: 5 });
    expect(types.get("abs")).toMatchObject({ command: ["/usr/bin/env"] });
    for (const [text, message] of [
      ['[types.x]\ncommand = ["a"]\nbuiltin = "noop"', "types.x: expected exactly one of url, builtin, command or pull"],
      ["[types.x]\ncommand = []", "types.x.command: expected an array of strings"],
      ['[types.x]\ncommand = "./run.sh"', "types.x.command: expected an array of strings"],
      ['[types.x]\ncommand = [""]', "types.x.command.0: must not be empty"],
      ['[types.x]\ncommand = ["a"]\nheaders = { a = "b" }', "types.x.headers: only allowed with url"],
    ] as const) {
      expect(() => parseTypesConfig(text, "toml", { timeoutMs: 1, maxAttempts: 1 }, "jobs.toml")).toThrow(message);
    }
  });

  test("a command job on a queue completes with its stdout as result, fails with stderr as its error, and a timeout kills its tree and retries", async () => {
    const pidFile = join(dir, "slow-child");
    const types = parseTypesConfig(`
[types.ok]
command = ["${script("ok.sh", "cat > /dev/null; echo done")}"]

[types.bad]
command = ["${script("bad.sh", "echo 'no such image' >&2; exit 2")}"]
max_attempts = 1

[types.slow]
command = ["${script("slow.sh", `sleep 300 & echo $! > ${pidFile}; wait`)}"]
timeout = "300ms"
max_attempts = 2
`, "toml", { timeoutMs: 30_000, maxAttempts: 5 });
    const registry = registryFromTypes(types, { timeoutMs: 30_000, maxAttempts: 5, priority: 0 }, { commandEnv: { PATH: process.env.PATH ?? "" } });
    const q = await startQueueWith(createSqliteStore({ path: join(dir, "q.db"), synchronous: "NORMAL" }), registry, {
      nodeId: "exec-test", backoff: { baseMs: 1, capMs: 1 }, keepCompletedMs: 60_000,
    });
    const ok = await call(q, "POST", "/submit", { type: "ok", payload: { n: 1 } });
    const bad = await call(q, "POST", "/submit", { type: "bad" });
    const slow = await call(q, "POST", "/submit", { type: "slow" });
    await waitFor(async () => (await call(q, "GET", `/jobs/${ok.body.id}`)).body.state === "completed", { what: "ok completes" });
    expect((await call(q, "GET", `/jobs/${ok.body.id}`)).body.result).toBe("done\n");
    await waitFor(async () => (await call(q, "GET", `/jobs/${bad.body.id}`)).body.state === "dead", { what: "bad is dead" });
    expect((await call(q, "GET", `/jobs/${bad.body.id}`)).body.lastError).toBe("command exited with code 2: no such image");
    await waitFor(async () => (await call(q, "GET", `/jobs/${slow.body.id}`)).body.state === "dead", { what: "slow timed out twice", timeoutMs: 10_000 });
    const view = (await call(q, "GET", `/jobs/${slow.body.id}`)).body;
    expect(view).toMatchObject({ attempts: 2, lastError: "timed out after 300 ms" });
    const child = Number(readFileSync(pidFile, "utf8"));
    await waitFor(() => !alive(child), { what: "the timed-out attempt's child is gone" });
    await q.shutdown(1000);
  });
});
