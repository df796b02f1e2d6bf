// init-check-config.binary.test.ts: `jobqueue init` and `jobqueue check-config` on the compiled
// executable: the starter file passes the check, init never overwrites, and a broken file fails the
// check with exit 2 and the very line serve stops with.
import { beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { STARTER_TYPES } from "../src/commands/init.ts";
import { ensureBinary } from "./support/binary.ts";

let bin: string;
beforeAll(async () => {
  bin = await ensureBinary();
});

const freshDir = () => mkdtempSync(join(tmpdir(), "jq-init-"));

async function run(args: string[], cwd: string, env: Record<string, string> = {}) {
  const p = Bun.spawn([bin, ...args], { cwd, env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

test("init writes the commented starter types file to ./jobqueue.toml, and check-config accepts it", async () => {
  const dir = freshDir();
  const init = await run(["init"], dir);
  expect(init.code).toBe(0);
  expect(init.stdout).toContain("wrote ./jobqueue.toml");
  const text = readFileSync(join(dir, "jobqueue.toml"), "utf8");
  expect(text).toBe(STARTER_TYPES);
  expect(text).toContain("# ");

  const check = await run(["check-config", "jobqueue.toml"], dir);
  expect(check).toEqual({ code: 0, stdout: "ok: 3 job types, 0 schedules\n", stderr: "" });
});

test("init refuses to overwrite an existing file and leaves it as it was", async () => {
  const dir = freshDir();
  writeFileSync(join(dir, "jobqueue.toml"), "# mine\n");
  const again = await run(["init"], dir);
  expect(again.code).toBe(1);
  expect(again.stderr).toBe("jobqueue: ./jobqueue.toml already exists: not overwriting it (remove it, or name another file)\n");
  expect(readFileSync(join(dir, "jobqueue.toml"), "utf8")).toBe("# mine\n");

  // A path of its own is written, once.
  expect((await run(["init", "jobs.toml"], dir)).code).toBe(0);
  expect(readFileSync(join(dir, "jobs.toml"), "utf8")).toBe(STARTER_TYPES);
  expect((await run(["init", "jobs.toml"], dir)).code).toBe(1);
  // A file the server would not read as TOML is refused.
  const json = await run(["init", "jobs.json"], dir);
  expect(json.code).toBe(1);
  expect(json.stderr).toContain("give a path ending in .toml");
});

test("check-config counts the job types and the schedules", async () => {
  const dir = freshDir();
  writeFileSync(join(dir, "jobs.toml"), [
    '[types.noop]\nbuiltin = "noop"',
    '[types.email]\nurl = "https://mail.example/hook"\ntimeout = "10s"',
    "[types.resize]\npull = true",
    '[schedules.nightly]\ncron = "0 3 * * *"\ntype = "noop"',
  ].join("\n\n"));
  const r = await run(["check-config", "jobs.toml"], dir);
  expect(r).toEqual({ code: 0, stdout: "ok: 3 job types, 1 schedule\n", stderr: "" });
});

test("a broken file fails check-config with exit 2 and the one line serve stops with", async () => {
  const dir = freshDir();
  const path = join(dir, "bad.toml");
  writeFileSync(path, '[types.x]\nurl = "ftp://nope"\n');
  const check = await run(["check-config", path], dir);
  expect(check.code).toBe(2);
  expect(check.stdout).toBe("");
  expect(check.stderr).toBe(`jobqueue: ${path}: types.x.url: expected an http:// or https:// URL\n`);

  // serve refuses the same file with the same message (in its JSON log line), before opening anything.
  const serve = await run(["serve", "--port", "0", "--config", path], dir, { JOBQUEUE_DB: join(dir, "jobs.db") });
  expect(serve.code).toBe(2);
  const fatal = serve.stderr.trim().split("\n").map((l) => JSON.parse(l) as { msg: string; err?: string }).find((l) => l.msg === "fatal");
  expect(`jobqueue: ${fatal?.err}\n`).toBe(check.stderr);

  // Other kinds of mistakes: a schedule of an unknown type, and a file that is not TOML.
  writeFileSync(path, '[types.a]\nbuiltin = "noop"\n\n[schedules.s]\nevery = "1m"\ntype = "b"\n');
  const schedule = await run(["check-config", path], dir);
  expect(schedule.code).toBe(2);
  expect(schedule.stderr).toStartWith(`jobqueue: ${path}: schedules.s.type: `);
  writeFileSync(path, "[types.a\n");
  const toml = await run(["check-config", path], dir);
  expect(toml.code).toBe(2);
  expect(toml.stderr).toStartWith(`jobqueue: ${path}: not valid TOML`);
  expect(toml.stderr.trim().split("\n")).toHaveLength(1);
});

test("check-config looks secret_env up in its own environment, as serve does", async () => {
  const dir = freshDir();
  writeFileSync(join(dir, "jobs.toml"), '[types.email]\nurl = "https://mail.example/hook"\nsecret_env = "HOOK_SECRET"\n');
  const unset = await run(["check-config", "jobs.toml"], dir);
  expect(unset.code).toBe(2);
  expect(unset.stderr).toBe("jobqueue: jobs.toml: types.email.secret_env: environment variable HOOK_SECRET is not set\n");
  const set = await run(["check-config", "jobs.toml"], dir, { HOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString("base64")}` });
  expect(set).toEqual({ code: 0, stdout: "ok: 1 job type, 0 schedules\n", stderr: "" });
});

test("check-config without a file checks --config or JOBQUEUE_CONFIG, and says what to give when neither is set", async () => {
  const dir = freshDir();
  expect((await run(["init"], dir)).code).toBe(0);
  expect((await run(["check-config"], dir, { JOBQUEUE_CONFIG: "jobqueue.toml" })).stdout).toBe("ok: 3 job types, 0 schedules\n");
  expect((await run(["check-config", "--config", "jobqueue.toml"], dir)).code).toBe(0);
  const none = await run(["check-config"], dir);
  expect(none.code).toBe(2);
  expect(none.stderr).toContain("name a job types file");
  const missing = await run(["check-config", "nope.toml"], dir);
  expect(missing).toEqual({ code: 2, stdout: "", stderr: "jobqueue: nope.toml: cannot read the job types file (ENOENT)\n" });
});
