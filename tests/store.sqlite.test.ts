// store.sqlite.test.ts: the Store contract against the embedded SQLite store (a fresh temp file
// per run), once with synchronous=FULL (the default) and once with NORMAL.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSqliteStore } from "../src/store/sqlite/index.ts";
import { runStoreContract } from "./store.contract.ts";

for (const synchronous of ["FULL", "NORMAL"] as const) {
  runStoreContract(`sqlite (synchronous=${synchronous})`, () => {
    const dir = mkdtempSync(join(tmpdir(), "jq-sqlite-"));
    return {
      async open() {
        const store = createSqliteStore({ path: join(dir, "nested", "jobs.db"), synchronous });
        await store.migrate();
        return store;
      },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  });
}
