// custom-binary.test.ts: the README's "your own binary" example (examples/custom-binary.ts) compiles
// with bun build --compile and runs: its TypeScript job type completes next to the stock server's
// API, and the README shows that file's code as it is.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./support/wait.ts";

const ROOT = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "jq-custom-"));
const binary = join(dir, "greeter");
let proc: ReturnType<typeof Bun.spawn> | null = null;
let url = "";

beforeAll(async () => {
  const build = Bun.spawn(["bun", "build", "--compile", "examples/custom-binary.ts", "--outfile", binary], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
  if ((await build.exited) !== 0) throw new Error(`build failed: ${await new Response(build.stderr).text()}`);
  proc = Bun.spawn([binary, "--port", "0", "--keep-completed", "1h", "--db", join(dir, "jobs.db")], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdout: "ignore", stderr: "pipe",
  });
  const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
  let logs = "";
  while (!/"msg":"listening"/.test(logs)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the binary exited before listening: ${logs}`);
    logs += new TextDecoder().decode(value);
  }
  url = /"url":"([^"]+)"/.exec(logs.slice(logs.indexOf('"msg":"listening"')))![1]!;
});
afterAll(async () => {
  proc?.kill("SIGTERM");
  await proc?.exited;
  rmSync(dir, { recursive: true, force: true });
});

const submit = async (body: unknown) =>
  (await fetch(`${url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json() as Promise<{ id: string }>;
const job = async (id: string) => (await fetch(`${url}/jobs/${id}`)).json() as Promise<Record<string, unknown>>;

test("a compiled binary with a TypeScript job type runs it through the stock HTTP API", async () => {
  const { id } = await submit({ type: "greet", payload: { name: "Ada" } });
  const done = await waitFor(async () => {
    const j = await job(id);
    return j.state === "completed" ? j : null;
  }, { what: "the greet job to complete" });
  expect(done).toMatchObject({ type: "greet", attempts: 1, result: "hello, Ada" });
  const { id: nameless } = await submit({ type: "greet", payload: {} });
  const dead = await waitFor(async () => {
    const j = await job(nameless);
    return j.state === "dead" ? j : null;
  }, { what: "the nameless job to be dead" });
  expect(dead).toMatchObject({ attempts: 1, lastError: "no name to greet" });
});

test("the README shows the example's code as it is", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const example = readFileSync(join(ROOT, "examples/custom-binary.ts"), "utf8");
  const code = example.split("\n").filter((l) => !l.startsWith("//")).join("\n").trim();
  expect(readme).toContain(code);
});
