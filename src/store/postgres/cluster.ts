// cluster.ts: what the processes sharing one PostgreSQL tell each other: the node id each holds (a
// session advisory lock on a connection of its own), heartbeats, and new-job and pause hints over
// LISTEN/NOTIFY.
// No job rows here.
import { NodeIdInUseError } from "../../errors.ts";
import type { Cluster } from "../store.ts";
import { on, type Connection, type Methods, type Sql } from "./connection.ts";
import { at } from "./sql.ts";

/** The channel nodes use to hint that jobs arrived, and that the paused types changed. */
export const NOTIFY_CHANNEL = "jobqueue_jobs";
/** The payload of a pause or resume's NOTIFY (a job hint's is its sender's instance, a UUID). */
export const PAUSES_CHANGED = "pauses";
/** At most one hint per this many ms from one process. */
const ANNOUNCE_EVERY_MS = 20;

/** Take (or take again) the node id's lock on `conn`; NodeIdInUseError names the holder when known. */
async function lockNodeId(id: string, conn: Sql): Promise<number> {
  const key = `jobqueue.node:${id}`;
  const [row] = await on(conn).query<{ held: boolean; pid: number }>(`
    SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS held, pg_backend_pid() AS pid`, [key]);
  if (row?.held) return row.pid;
  const holder = await on(conn).query<{ addr: string | null; since: Date | null }>(`
    SELECT host(a.client_addr) AS addr, a.backend_start AS since FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND (l.classid::bigint << 32) | l.objid::bigint = hashtextextended($1, 0)`, [key]).catch(() => []);
  const h = holder[0];
  throw new NodeIdInUseError(id, h ? ` (its database session ${h.addr ? `from ${h.addr} ` : ""}started ${h.since?.toISOString() ?? "earlier"})` : "");
}

/** The Cluster role, and releaseNode() for close(): ending the node id's session releases its lock. */
export function createCluster(db: Connection): Methods<Cluster> & { releaseNode(): Promise<void> } {
  /** Tags this store's own NOTIFYs so its listener can ignore them. */
  const instance = crypto.randomUUID();
  let announcing = false;
  let lastAnnounce = -Infinity;
  const notify = db.op("announce", async () => {
    await db.query("SELECT pg_notify($1, $2)", [NOTIFY_CHANNEL, instance]);
  });

  /**
   * The node id this process holds: a session advisory lock on a connection of its own (never
   * replaced with the pool), and that session's backend pid, which changes when the connection was
   * lost and reopened (the lock went with the old session).
   */
  let node: { id: string; conn: Sql; pid: number } | null = null;

  return {
    holdNodeId: db.exempt("start-up, on a connection of its own, which replacing the pool would not help", async (id: string) => {
      const conn = db.open(1);
      try {
        node = { id, conn, pid: await lockNodeId(id, conn) };
      } catch (err) {
        await conn.end({ timeout: 1 }).catch(() => {});
        throw err;
      }
    }),

    heartbeatNode: db.op("heartbeatNode", async (id: string, now: number, aliveSince: number) => {
      const [row] = await db.query<{ alive: number }>(`
        WITH up AS (
          INSERT INTO jobqueue_nodes (id, started_at, heartbeat_at)
          VALUES ($1, ${at("$2")}, ${at("$2")})
          ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at)
        SELECT 1 + count(*)::int AS alive FROM jobqueue_nodes
        WHERE id <> $1 AND heartbeat_at >= ${at("$3")}`, [id, now, aliveSince]);
      // The id's lock lives in its connection's session: if that connection was replaced, take it
      // again. That idle connection also gives the quickest reading of the server's clock.
      if (node !== null && node.id === id) {
        const [session] = await on(node.conn).query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        if (session && session.pid !== node.pid) node.pid = await lockNodeId(id, node.conn);
        await db.measureClock(on(node.conn));
      } else await db.measureClock();
      return row?.alive ?? 1;
    }),

    removeNode: db.op("removeNode", async (id: string) => {
      await db.query("DELETE FROM jobqueue_nodes WHERE id = $1", [id]);
    }),

    // The NOTIFY runs under the deadline like every move (one stuck on a dead connection would
    // otherwise hold `announcing` forever, and this process would never hint again); the calls the
    // rate skips (most of them: every submit calls this) cost no deadline timer.
    announce: db.exempt("skipped calls return at once; the NOTIFY itself runs under the deadline (notify)", async (now: number) => {
      // At most one NOTIFY out at a time and one per ANNOUNCE_EVERY_MS.
      if (announcing || now - lastAnnounce < ANNOUNCE_EVERY_MS) return;
      announcing = true;
      lastAnnounce = now;
      try {
        await notify();
      } finally {
        announcing = false;
      }
    }),

    listen: db.exempt("holds a connection of its own, which a replaced pool must not drop, for as long as it listens", async (onHint: () => void, onPauses?: () => void) => {
      const listener = db.open(1);
      await listener.listen(NOTIFY_CHANNEL, (from) => {
        if (from === PAUSES_CHANGED) onPauses?.();
        else if (from !== instance) onHint();
      });
      return async () => {
        await listener.end({ timeout: 1 });
      };
    }),

    async releaseNode() {
      await node?.conn.end({ timeout: 1 });
      node = null;
    },
  };
}
