// sqlite-lock.test.ts: one SQLite file is served by one process at a time. A second opener, in
// this process or another, is refused at once; close() or the holder's death frees the file.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { StoreLockedError } from "../src/errors.ts";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import { job } from "./store.contract.ts";

const dir = mkdtempSync(join(tmpdir(), "jq-sqlite-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `jobs-${++files}.db`);

const STORE_MODULE = resolve(import.meta.dir, "../src/store/sqlite/index.ts");
const ERRORS_MODULE = resolve(import.meta.dir, "../src/errors.ts");

// Opens the store in a child process and prints "locked" or "opened". With hold, it also inserts
// one job, prints "opened <id>" and keeps the store open until killed.
const CHILD = `
import { createSqliteStore } from ${JSON.stringify(STORE_MODULE)};
import { StoreLockedError } from ${JSON.stringify(ERRORS_MODULE)};
try {
  const store = createSqliteStore({ path: process.env.JQ_DB });
  if (process.env.JQ_HOLD) {
    await store.migrate();
    const [id] = await store.insert([{ type: "t", payload: "{}", priority: 0, maxAttempts: 3, runAt: 1, timeoutMs: null }], 1);
    console.log("opened " + id);
    setInterval(() => {}, 1 << 30);
  } else {
    console.log("opened");
    await store.close();
  }
} catch (err) {
  console.log(err instanceof StoreLockedError ? "locked" : "error " + err);
}`;

function spawnChild(path: string, hold = false) {
  return Bun.spawn([process.execPath, "-e", CHILD], {
    env: { ...process.env, JQ_DB: path, ...(hold ? { JQ_HOLD: "1" } : {}) },
    stdout: "pipe",
    stderr: "inherit",
  });
}

/** What a child opener reports for `path`: "opened" or "locked". */
async function childOpens(path: string): Promise<string> {
  const child = spawnChild(path);
  const out = await new Response(child.stdout).text();
  await child.exited;
  return out.trim();
}

/** The first line a child prints. */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    const nl = text.indexOf("\n");
    if (nl >= 0) return text.slice(0, nl);
  }
  return text;
}

describe("the SQLite single-process lock", () => {
  test("a second store on the same file in this process is refused with a clear error", async () => {
    const path = freshPath();
    const store = createSqliteStore({ path });
    try {
      let caught: unknown;
      try {
        createSqliteStore({ path });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(StoreLockedError);
      expect((caught as Error).message).toBe(`the database ${resolve(path)} is in use by another jobqueue process (lock held)`);
      // The refused opener let go of its own handle without dropping the holder's lock.
      expect(await childOpens(path)).toBe("locked");
    } finally {
      await store.close();
    }
  });

  test("after close() the file opens again with its jobs", async () => {
    const path = freshPath();
    const first = createSqliteStore({ path });
    await first.migrate();
    const [id] = await first.insert([job({ runAt: 1 })], 1);
    await first.close();
    const second = createSqliteStore({ path });
    try {
      await second.migrate();
      expect(await second.get(id!, 1)).toMatchObject({ id: id!, state: "pending" });
      // Ids keep counting from where the first run stopped.
      const [next] = await second.insert([job()], 1);
      expect(next!).toBeGreaterThan(id!);
    } finally {
      await second.close();
    }
  });

  test("another process is refused while this one holds the file, and opens it once this one closes", async () => {
    const path = freshPath();
    const store = createSqliteStore({ path });
    expect(await childOpens(path)).toBe("locked");
    await store.close();
    expect(await childOpens(path)).toBe("opened");
  });

  test("a holder killed with SIGKILL frees the file, and its committed job survives", async () => {
    const path = freshPath();
    const holder = spawnChild(path, true);
    try {
      const line = await firstLine(holder.stdout);
      expect(line).toStartWith("opened ");
      const id = Number(line.slice("opened ".length));
      expect(() => createSqliteStore({ path })).toThrow(StoreLockedError);

      holder.kill("SIGKILL");
      await holder.exited;
      const store = createSqliteStore({ path });
      try {
        await store.migrate();
        expect(await store.get(id, 1)).toMatchObject({ id, state: "pending", type: "t" });
      } finally {
        await store.close();
      }
    } finally {
      holder.kill("SIGKILL");
    }
  });
});
