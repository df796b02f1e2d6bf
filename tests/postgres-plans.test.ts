// postgres-plans.test.ts: the store's per-job statements use indexes, not sequential scans, once
// the tables hold real volumes (checked through PostgreSQL's own per-table scan counters); the
// reaper's and a restart's reads of inflight_jobs (small by construction) scan only that table.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { createPostgresStore } from "../src/store/postgres/index.ts";
import { job } from "./store.contract.ts";
import { createTestDatabase } from "./support/pg.ts";
import { waitFor } from "./support/wait.ts";

let db: { url: string; drop: () => Promise<void> };
beforeAll(async () => {
  db = await createTestDatabase("jq_plans");
});
afterAll(async () => {
  await db.drop();
});

type Stats = Record<string, { seq_scan: number; idx_scan: number; n_tup_del: number }>;

async function tableStats(sql: postgres.Sql): Promise<Stats> {
  const rows = await sql<{ relname: string; seq_scan: string; idx_scan: string; n_tup_del: string }[]>`
    SELECT relname, seq_scan, coalesce(idx_scan, 0) AS idx_scan, n_tup_del FROM pg_stat_user_tables
    WHERE relname IN ('pending_jobs', 'inflight_jobs', 'dead_jobs')`;
  return Object.fromEntries(rows.map((r) => [r.relname, { seq_scan: Number(r.seq_scan), idx_scan: Number(r.idx_scan), n_tup_del: Number(r.n_tup_del) }]));
}

test("claims, settles and lookups scan no table sequentially; lease upkeep scans only inflight_jobs", async () => {
  const T0 = 1_700_000_000_000;
  const seed = createPostgresStore({ url: db.url });
  await seed.migrate();
  for (let i = 0; i < 20; i++) await seed.insert(Array.from({ length: 1000 }, () => job()), T0);
  const some = (await seed.insert(Array.from({ length: 40 }, () => job()), T0));
  const inflightSeed = await seed.insert(Array.from({ length: 5000 }, () => job()), T0);
  (await seed.claim(inflightSeed, "other-node", T0, 3_600_000)).jobs;
  await seed.bury(inflightSeed.slice(0, 2000).map((id) => ({ id, attempt: 1, error: "seed" })), T0);
  await seed.close();

  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  await sql`ANALYZE pending_jobs, inflight_jobs, dead_jobs`;
  const before = await tableStats(sql);

  const store = createPostgresStore({ url: db.url });
  const claimed = (await store.claim(some, "me", T0, 30_000)).jobs;
  expect(claimed).toHaveLength(40);
  const refs = claimed.map((j) => ({ id: j.id, attempt: j.attempts }));
  await store.complete(refs.slice(0, 10));
  await store.retry(refs.slice(10, 20).map((r) => ({ ...r, runAt: T0, error: "e" })));
  await store.bury(refs.slice(20, 30).map((r) => ({ ...r, error: "e" })), T0);
  await store.get(some[0]!, T0);
  await store.get(inflightSeed[0]!, T0);
  await store.close(); // ends the backends, which flushes their table statistics

  const flushed = (s: Stats, deletes: number) => s.inflight_jobs!.n_tup_del >= before.inflight_jobs!.n_tup_del + deletes ? s : null;
  const after = await waitFor(async () => flushed(await tableStats(sql), 30), { what: "statistics flushed" });
  for (const table of ["pending_jobs", "inflight_jobs", "dead_jobs"]) {
    expect({ table, seqScans: after[table]!.seq_scan - before[table]!.seq_scan }).toEqual({ table, seqScans: 0 });
  }
  expect(after.inflight_jobs!.idx_scan).toBeGreaterThan(before.inflight_jobs!.idx_scan);

  // Per node and periodic, not per job: lease heartbeats, the shutdown hand-back, lease expiry and
  // restart recovery may read inflight_jobs whole (it holds at most the live nodes' worker slots,
  // here 3,010 rows; the planner prefers that to 10 index probes) but never scan another table.
  const maintenance = createPostgresStore({ url: db.url });
  const mine = refs.slice(30, 40);
  expect(await maintenance.extendLeases(mine, "me", T0 + 60_000)).toEqual(mine.map(() => true));
  expect(await maintenance.release(mine, "me", T0)).toHaveLength(10);
  const reaped = await maintenance.reapExpired(T0 + 3_600_001, 100);
  expect(reaped).toHaveLength(100);
  const recovered = await maintenance.recoverOwner("other-node", T0);
  expect(recovered).toHaveLength(2900);
  await maintenance.close();
  const last = await waitFor(async () => flushed(await tableStats(sql), 40 + 3000), { what: "statistics flushed" });
  await sql.end();
  for (const table of ["pending_jobs", "dead_jobs"]) {
    expect({ table, seqScans: last[table]!.seq_scan - after[table]!.seq_scan }).toEqual({ table, seqScans: 0 });
  }
});

test("a claim keeps to the primary key when pending_jobs has grown far past its statistics", async () => {
  const stale = await createTestDatabase("jq_plans_stale");
  const sql = postgres(stale.url, { max: 1, onnotice: () => {} });
  const T0 = 1_700_000_000_000;
  try {
    const seed = createPostgresStore({ url: stale.url });
    await seed.migrate();
    // Statistics from a small table, frozen: submits pour in faster than autovacuum's next analyze.
    await sql`ALTER TABLE pending_jobs SET (autovacuum_enabled = false)`;
    const early = await seed.insert(Array.from({ length: 600 }, () => job({ runAt: T0 })), T0);
    await sql`ANALYZE pending_jobs`;
    const counters = async () => {
      const [r] = await sql<{ fetched: string; deleted: string }[]>`
        SELECT idx_tup_fetch AS fetched, n_tup_del AS deleted FROM pg_stat_user_tables WHERE relname = 'pending_jobs'`;
      return { fetched: Number(r!.fetched), deleted: Number(r!.deleted) };
    };
    const before = await counters();

    // One connection claims while the table is small (more than five times, so the prepared
    // claim settles on a generic plan), then again after 40,000 more rows arrived.
    const store = createPostgresStore({ url: stale.url, max: 1 });
    for (let i = 0; i < 8; i++) expect((await store.claim(early.slice(i * 32, i * 32 + 32), "me", T0 + 1, 30_000)).jobs).toHaveLength(32);
    const late: number[] = [];
    for (let i = 0; i < 40; i++) late.push(...(await seed.insert(Array.from({ length: 1000 }, () => job({ runAt: T0 })), T0)));
    for (let i = 0; i < 4; i++) expect((await store.claim(late.slice(i * 32, i * 32 + 32), "me", T0 + 1, 30_000)).jobs).toHaveLength(32);
    await store.close();
    await seed.close();

    // By primary key the twelve claims fetch at most their 384 rows; through
    // pending_jobs_run_at_idx every claim after the growth fetched all 40,000 due rows to keep 32.
    const after = await waitFor(async () => {
      const c = await counters();
      return c.deleted >= before.deleted + 384 ? c : null;
    }, { what: "statistics flushed" });
    expect(after.fetched - before.fetched).toBeLessThan(5000);
  } finally {
    await sql.end();
    await stale.drop();
  }
});
