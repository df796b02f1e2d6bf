// version.binary.test.ts: what --version says. A build through scripts/build-binary.sh (make build,
// make release) names the exact commit and target it was built with; a run from source says
// "commit unknown". --help lists the commands that work on types files.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };

const ROOT = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "jq-version-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function git(args: string[]): { code: number; out: string } {
  const p = Bun.spawnSync(["git", ...args], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
  return { code: p.exitCode, out: p.stdout.toString().trim() };
}

async function output(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

test("a build through scripts/build-binary.sh prints the version, the commit it was built from and its target", async () => {
  const bin = join(dir, "jobqueue");
  const build = await output(["bash", "scripts/build-binary.sh", "native", bin]);
  expect(build.code).toBe(0);
  // The same commit the script read, marked -dirty when tracked files differ from it.
  const head = git(["rev-parse", "--short=7", "HEAD"]).out;
  const commit = git(["diff", "--quiet", "HEAD", "--"]).code === 0 ? head : `${head}-dirty`;
  const r = await output([bin, "--version"]);
  expect(r).toEqual({ code: 0, stdout: `jobqueue ${pkg.version} (commit ${commit}, ${process.platform}-${process.arch})\n`, stderr: "" });
  expect((await output([bin, "-v"])).stdout).toBe(r.stdout);
});

test("run from source, --version says the commit is unknown and names the platform it runs on", async () => {
  const r = await output([process.execPath, "src/main.ts", "--version"]);
  expect(r).toEqual({ code: 0, stdout: `jobqueue ${pkg.version} (commit unknown, ${process.platform}-${process.arch})\n`, stderr: "" });
});

test("--help lists init and check-config with the other commands", async () => {
  const r = await output([process.execPath, "src/main.ts", "--help"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Usage: jobqueue [serve|migrate|init [file]|check-config [file]] [options]");
  for (const line of ["  serve ", "  migrate ", "  init [file] ", "  check-config [file] "]) expect(r.stdout).toContain(line);
});
