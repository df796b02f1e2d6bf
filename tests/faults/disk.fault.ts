// disk.fault.ts: the embedded store's disk fills up, or its directory turns read-only, under a
// binary (a small tmpfs mounted for the test; needs root). A full disk: submits get 503, the process
// stays up, nothing acknowledged is lost or corrupted, work resumes once space returns. A read-only
// directory: start-up refuses with a clear message, and succeeds once it is writable again.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, startBinary, type RunningBinary } from "../support/binary.ts";
import { scrape } from "../support/producer.ts";
import { waitFor } from "../support/wait.ts";

const mountDir = mkdtempSync(join(tmpdir(), "jq-disk-"));

async function sh(...cmd: string[]): Promise<number> {
  return await Bun.spawn(cmd, { stdout: "ignore", stderr: "ignore" }).exited;
}

/**
 * Decided when the test is declared, so a machine that cannot mount reports the test as skipped
 * (never as passed): mount a small tmpfs for a moment (needs root and a kernel that lets us).
 */
function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), "jq-disk-probe-"));
  const ok = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
  if (ok) Bun.spawnSync(["umount", probe], { stdout: "ignore", stderr: "ignore" });
  rmSync(probe, { recursive: true, force: true });
  return ok;
}
const MOUNTABLE = canMountTmpfs();
if (!MOUNTABLE) console.log("disk.fault.ts: skipped: cannot mount a tmpfs here (needs root)");

let mounted = false;
beforeAll(async () => {
  if (!MOUNTABLE) return;
  expect(await sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mountDir)).toBe(0);
  mounted = true;
});
afterAll(async () => {
  if (mounted) await sh("umount", "-l", mountDir);
});

async function submit(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

test.skipIf(!MOUNTABLE)("a full disk gets 503 and recovers; a read-only directory is refused at start; nothing is lost", async () => {
  const configPath = join(mkdtempSync(join(tmpdir(), "jq-disk-cfg-")), "jobs.toml");
  writeFileSync(configPath, `[types.noop]\nbuiltin = "noop"\n`);
  const dbPath = join(mountDir, "jobs.db");
  let node: RunningBinary = await startBinary([], { JOBQUEUE_DB: dbPath, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: "disk" });
  const acked: string[] = [];
  try {
    // Fill the disk with jobs that wait an hour (so they stay), 100 KiB each, until refused.
    const big = "x".repeat(100_000);
    let refused: { status: number; body: any } | null = null;
    for (let i = 0; i < 200 && !refused; i++) {
      const r = await submit(node.url, { type: "noop", payload: { big, i }, delayMs: 3_600_000 });
      if (r.status === 202) acked.push(r.body.id);
      else refused = r;
    }
    expect(refused, "the 4 MiB disk never filled").not.toBeNull();
    expect(refused!.status).toBe(503);
    expect(refused!.body.error.code).toBe("unavailable");
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
    // Small jobs keep being refused while the disk is full: never a 202 that was not stored.
    const small = await submit(node.url, { type: "noop", payload: { big: big.slice(0, 50_000) }, delayMs: 3_600_000 });
    if (small.status === 202) acked.push(small.body.id);
    else expect(small.status).toBe(503);

    // Space returns: the same server accepts and runs work again.
    expect(await sh("mount", "-o", "remount,size=64m", mountDir)).toBe(0);
    const after = await waitFor(async () => {
      const r = await submit(node.url, { type: "noop", payload: { after: true } });
      return r.status === 202 ? r : null;
    }, { what: "submits accepted after space returned" });
    await waitFor(async () => (await fetch(`${node.url}/jobs/${after.body.id}`)).status === 404, { what: "the new job completes" });

    const m = await scrape(node.url);
    expect(m.get("jobqueue_jobs_scheduled")).toBe(acked.length);
  } finally {
    node.proc.kill("SIGTERM");
    expect(await node.exited).toBe(0);
  }

  // A read-only data directory: start-up fails with a clear message instead of running blind.
  expect(await sh("mount", "-o", "remount,ro", mountDir)).toBe(0);
  const ro = Bun.spawn([BINARY], {
    env: { PATH: process.env.PATH ?? "", JOBQUEUE_DB: dbPath, PORT: "0", JOBQUEUE_CONFIG: configPath },
    stdout: "ignore", stderr: "pipe",
  });
  const [roErr, roCode] = await Promise.all([new Response(ro.stderr).text(), ro.exited]);
  expect(roCode).not.toBe(0);
  expect(roErr.toLowerCase()).toMatch(/read-?only/);
  expect(await sh("mount", "-o", "remount,rw", mountDir)).toBe(0);
  node = await startBinary([], { JOBQUEUE_DB: dbPath, PORT: "0", JOBQUEUE_CONFIG: configPath, JOBQUEUE_NODE_ID: "disk" });
  try {
    expect((await scrape(node.url)).get("jobqueue_jobs_scheduled")).toBe(acked.length);
    expect((await submit(node.url, { type: "noop" })).status).toBe(202);
  } finally {
    node.proc.kill("SIGTERM");
    expect(await node.exited).toBe(0);
  }
  // No corruption, and every acknowledged job is still there.
  const db = new Database(dbPath, { readonly: true });
  expect(db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()!.integrity_check).toBe("ok");
  const ids = new Set(db.query<{ id: number }, []>("SELECT id FROM pending_jobs").all().map((r) => String(r.id)));
  db.close();
  for (const id of acked) expect(ids.has(id), `acknowledged job ${id} lost`).toBe(true);
  console.log(`disk: acked ${acked.length} before the disk filled; all present, integrity ok`);
}, 120_000);
