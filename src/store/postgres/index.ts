// index.ts: the PostgreSQL Store, composed from its parts, one file per group of verbs. Every state
// move is one statement or one transaction, every move out of inflight is fenced by (id, attempts).
// Nothing but the composition here: no SQL, no scheduling decisions.
import { redactUrl } from "../../logger.ts";
import type { Store, StoreInfo, StoreTestHooks } from "../store.ts";
import { createAdmin } from "./admin.ts";
import { createBackup } from "./backup.ts";
import { createClaims } from "./claims.ts";
import { createCluster } from "./cluster.ts";
import { createConnection, type Methods, type PostgresStoreOptions } from "./connection.ts";
import { createLifecycle } from "./lifecycle.ts";
import { createListing } from "./listing.ts";
import { createPauses } from "./pauses.ts";
import { createRecovery } from "./recovery.ts";
import { createSchedules } from "./schedules.ts";
import { createSettle } from "./settle.ts";
import { createSubmit } from "./submit.ts";

export { socketOf, storeFault, type PostgresStoreOptions } from "./connection.ts";

export function createPostgresStore(opts: PostgresStoreOptions): Store & StoreTestHooks {
  const db = createConnection(opts);
  const { releaseNode, ...cluster } = createCluster(db);
  // Every method is made by db.op (under the statement deadline) or db.exempt (saying why not):
  // Methods<…> accepts no other, so a new method cannot be left unguarded by accident.
  const store: StoreInfo & Methods<Omit<Store, keyof StoreInfo> & StoreTestHooks> = {
    kind: "postgres",
    location: redactUrl(opts.url),
    blocking: false,
    clock: db.clock,
    ...createSubmit(db),
    ...createClaims(db),
    ...createSettle(db),
    ...createRecovery(db),
    ...createAdmin(db),
    ...createListing(db),
    ...createSchedules(db),
    ...createPauses(db),
    ...cluster,
    ...createBackup(db),
    ...createLifecycle(db, releaseNode),
  };
  return store;
}
