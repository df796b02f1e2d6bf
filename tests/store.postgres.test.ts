// store.postgres.test.ts: the Store contract against a real PostgreSQL (a fresh database).
import { createPostgresStore } from "../src/store/postgres.ts";
import { runStoreContract } from "./store.contract.ts";
import { createTestDatabase } from "./support/pg.ts";

runStoreContract("postgres", () => {
  let drop = async () => {};
  return {
    async open() {
      const db = await createTestDatabase("jq_store");
      drop = db.drop;
      const store = createPostgresStore({ url: db.url });
      await store.migrate();
      return store;
    },
    cleanup: () => drop(),
  };
});
