// pg.ts (test support): creates a throwaway PostgreSQL database per test file and drops it after.
import postgres from "postgres";

export const PG_ADMIN_URL = process.env.JOBQUEUE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export async function createTestDatabase(prefix = "jq_test"): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}
