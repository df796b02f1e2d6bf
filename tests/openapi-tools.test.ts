// openapi-tools.test.ts: the document GET /openapi.json serves, as third-party tools take it:
// `redocly lint` (recommended rules, exceptions only in redocly.yaml) finds no problem, and the
// types openapi-typescript generates from it let a producer's client (tests/fixtures/openapi-client.ts)
// type-check under strict tsc while wrong bodies do not. Offline: the tools run from node_modules.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestServer, type TestServer } from "./support/test-server.ts";

const ROOT = join(import.meta.dir, "..");
const BIN = join(ROOT, "node_modules", ".bin");
const TOKEN = "openapi-tools-test-token-0123456789";
/** No telemetry, no update check: the tools must not reach for the network. */
const QUIET_ENV = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" };

function run(cmd: string[], cwd = ROOT): { code: number; out: string; err: string } {
  const p = Bun.spawnSync({ cmd, cwd, env: QUIET_ENV, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("the OpenAPI document, as tools read it", () => {
  let server: TestServer;
  let dir: string;
  let documentPath: string;

  beforeAll(async () => {
    // A server with a token: the document must still be readable without it.
    server = await startTestServer({ env: { JOBQUEUE_TOKEN: TOKEN } });
    dir = mkdtempSync(join(tmpdir(), "jobqueue-openapi-"));
    const res = await fetch(`${server.server.url}/openapi.json`);
    expect(res.status).toBe(200);
    documentPath = join(dir, "openapi.json");
    writeFileSync(documentPath, await res.text());
  });
  afterAll(async () => {
    await server?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("redocly lint with the recommended rules finds no error and no warning", () => {
    const lint = run([join(BIN, "redocly"), "lint", documentPath, "--config", join(ROOT, "redocly.yaml"), "--lint-config", "error", "--format", "json"]);
    const report = JSON.parse(lint.out) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string; location: { pointer: string }[] }[] };
    const problems = report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
    expect(problems).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    expect(lint.code).toBe(0);
  });

  test("openapi-typescript's types take the README's bodies and a typed client, and refuse wrong bodies", () => {
    const gen = run([join(BIN, "openapi-typescript"), documentPath, "--output", join(dir, "jobqueue-api.ts")]);
    expect(gen.err.replace(/.*openapi-typescript \d.*\n|.*→.*\n/g, "").trim()).toBe("");
    expect(gen.code).toBe(0);
    copyFileSync(join(ROOT, "tests", "fixtures", "openapi-client.ts"), join(dir, "client.ts"));
    // Each line of wrong.ts must fail: a body without its type, a field the schema does not have,
    // a page size sent as text, an id that is not a string.
    const wrong = [
      'import type { components, paths } from "./jobqueue-api.ts";',
      'type SubmitBody = paths["/submit"]["post"]["requestBody"]["content"]["application/json"];',
      'type DeadQuery = NonNullable<paths["/dead"]["get"]["parameters"]["query"]>;',
      "export const noType: SubmitBody = { payload: 1 };",
      'export const unknownField: SubmitBody = { type: "noop", colour: "red" };',
      'export const textLimit: DeadQuery = { limit: "50" };',
      'export const numericId: components["schemas"]["Job"]["id"] = 42;',
    ];
    writeFileSync(join(dir, "wrong.ts"), wrong.join("\n") + "\n");
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, noEmit: true,
        target: "ES2022", module: "Preserve", moduleResolution: "bundler", allowImportingTsExtensions: true,
        lib: ["ES2022", "DOM", "DOM.Iterable"], types: [],
      },
      files: ["client.ts", "wrong.ts"],
    }));
    const tsc = run([join(BIN, "tsc"), "-p", join(dir, "tsconfig.json"), "--pretty", "false"], dir);
    const errors = tsc.out.split("\n").filter((line) => /error TS\d+/.test(line));
    expect(errors.filter((line) => !line.startsWith("wrong.ts("))).toEqual([]);
    const failingLines = new Set(errors.map((line) => Number(/^wrong\.ts\((\d+),/.exec(line)![1])));
    expect([...failingLines].sort((a, b) => a - b)).toEqual([4, 5, 6, 7]);
    expect(errors.find((line) => line.startsWith("wrong.ts(4,"))).toContain("is not assignable");
    expect(tsc.code).not.toBe(0);
  });
});
