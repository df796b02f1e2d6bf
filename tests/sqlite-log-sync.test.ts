// sqlite-log-sync.test.ts: the embedded store at synchronous=FULL answers no call before the commits
// made so far are synced to disk, syncs once for all the commits of one moment, and takes
// no more calls once a sync failed (src/store/sqlite/log-sync.ts). A real SQLite file each; only
// the moment each sync of the write-ahead log begins is held or failed, through the store's test hook.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StoreOutcomeUnknownError, StoreUnavailableError } from "../src/errors.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import { job } from "./store.contract.ts";
import { waitFor } from "./support/wait.ts";

const NOW = 1_700_000_000_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A store whose log syncs can be held (hold()), released (release()) or failed (failNext). */
async function heldStore(synchronous: "FULL" | "NORMAL" = "FULL") {
  const dir = mkdtempSync(join(tmpdir(), "jq-logsync-"));
  dirs.push(dir);
  const path = join(dir, "jobs.db");
  let gate: Promise<void> | null = null;
  let open = () => {};
  const hooks = { syncs: 0, failNext: false };
  const store = createSqliteStore({
    path, synchronous,
    beforeLogSync: async () => {
      hooks.syncs++;
      if (gate) await gate;
      if (hooks.failNext) throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
    },
  });
  await store.migrate();
  return {
    store, path, hooks,
    hold() {
      gate = new Promise<void>((resolve) => (open = resolve));
    },
    release() {
      gate = null;
      open();
    },
  };
}

/** Whether a promise has settled yet (checked after the tasks queued so far have run). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await Bun.sleep(0);
  await Bun.sleep(0);
  return done;
}

describe("embedded store durability at synchronous=FULL", () => {
  test("a submit is answered only after a sync that began after its commit has ended, and a read waits too", async () => {
    const s = await heldStore();
    s.hold();
    const syncsBefore = s.hooks.syncs;
    const added = s.store.add([job()], NOW);
    await waitFor(() => s.hooks.syncs > syncsBefore, { what: "the sync to begin" });
    // The row is committed (a read would see it) but not on disk yet: neither call is answered.
    const counted = s.store.counts();
    expect(await settled(added)).toBe(false);
    expect(await settled(counted)).toBe(false);
    s.release();
    expect((await added)[0]!.duplicate).toBe(false);
    expect((await counted).pending).toBe(1);
    // Nothing new since: a read needs no sync and begins none.
    const syncs = s.hooks.syncs;
    expect((await s.store.counts()).pending).toBe(1);
    expect(s.hooks.syncs).toBe(syncs);
    await s.store.close();
  });

  test("commits made while a sync is out get one sync of their own, shared by all of them", async () => {
    const s = await heldStore();
    s.hold();
    const syncsBefore = s.hooks.syncs;
    const first = s.store.add([job()], NOW);
    await waitFor(() => s.hooks.syncs > syncsBefore, { what: "the first sync to begin" });
    // Twenty commits in one turn of the event loop, while the first sync is held.
    const more = Array.from({ length: 20 }, (_, i) => s.store.add([job({ type: `t${i}` })], NOW));
    await waitFor(() => s.hooks.syncs > syncsBefore + 1, { what: "a second sync to begin" });
    expect(await settled(Promise.all(more))).toBe(false);
    expect(s.hooks.syncs - syncsBefore).toBe(2);
    s.release();
    await first;
    await Promise.all(more);
    expect(s.hooks.syncs - syncsBefore).toBe(2);
    expect((await s.store.counts()).pending).toBe(21);
    await s.store.close();
  });

  test("a failed sync: the calls waiting on it get an unknown outcome, and the store refuses every call after", async () => {
    const s = await heldStore();
    s.hooks.failNext = true;
    const err = await s.store.add([job()], NOW).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(StoreOutcomeUnknownError);
    expect(String((err as Error).message)).toContain("could not sync its log to disk (EIO");
    s.hooks.failNext = false;
    const after = await s.store.counts().then(() => null, (e: unknown) => e);
    expect(after).toBeInstanceOf(StoreUnavailableError);
    expect(String((after as Error).message)).toContain("restart the process");
    await s.store.close();
    // The commit itself was written (only its sync failed): the process was not lost, so it is there.
    const reopened = createSqliteStore({ path: s.path });
    await reopened.migrate();
    expect((await reopened.counts()).pending).toBe(1);
    await reopened.close();
  });

  test("synchronous=NORMAL answers at once and never syncs the log", async () => {
    const s = await heldStore("NORMAL");
    s.hold();
    await s.store.add([job()], NOW);
    expect((await s.store.counts()).pending).toBe(1);
    expect(s.hooks.syncs).toBe(0);
    await s.store.close();
  });
});
