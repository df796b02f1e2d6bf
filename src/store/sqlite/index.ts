// index.ts: the embedded SQLite Store (bun:sqlite) for one process, composed from its parts: every state
// move is one immediate transaction, every move out of inflight is fenced by (id, attempts), and the
// file is locked to this process while open. No SQL and no scheduling decisions here.
import type { Store, StoreTestHooks } from "../store.ts";
import { createAdmin } from "./admin.ts";
import { createBackup } from "./backup.ts";
import { createClaims } from "./claim.ts";
import { createCluster } from "./cluster.ts";
import { createListing } from "./listing.ts";
import { createPauses } from "./pauses.ts";
import { openConnection, type GuardedStore, type SqliteStoreOptions } from "./connection.ts";
import { createRecovery } from "./recovery.ts";
import { createSchedules } from "./schedules.ts";
import { createSettle } from "./settle.ts";
import { createSubmit } from "./submit.ts";
import { createTableSteps } from "./tables.ts";

export type { SqliteStoreOptions } from "./connection.ts";

export function createSqliteStore(opts: SqliteStoreOptions): Store & StoreTestHooks {
  const { conn, lifecycle, location } = openConnection(opts);
  const tables = createTableSteps(conn);
  const store: GuardedStore = {
    kind: "sqlite",
    location,
    blocking: true,
    // One process per file: its clock is the only one. Reads no file, so it is not guarded.
    clock: Date.now,
    ...lifecycle,
    ...createSubmit({ conn }),
    ...createClaims({ conn }),
    ...createSettle({ conn, tables }),
    ...createRecovery({ conn, tables }),
    ...createAdmin({ conn, tables }),
    ...createListing({ conn }),
    ...createSchedules({ conn }),
    ...createPauses({ conn }),
    ...createCluster({ conn }),
    ...createBackup({ conn, location }),
  };
  return store;
}
