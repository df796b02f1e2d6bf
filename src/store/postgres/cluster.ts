// cluster.ts: what the processes sharing one PostgreSQL tell each other: the node id each holds (a
// session advisory lock on a connection of its own), heartbeats, and new-job and pause hints over
// LISTEN/NOTIFY.
// No job rows here.
import { NodeIdInUseError } from "../../errors.ts";
import type { Cluster } from "../store.ts";
import { on, within, type Connection, type Methods, type Sql } from "./connection.ts";
import { at } from "./sql.ts";

/** The channel nodes use to hint that jobs arrived, and that the paused types changed. */
export const NOTIFY_CHANNEL = "jobqueue_jobs";
/** The payload of a pause or resume's NOTIFY (a job hint's is its sender's instance, a UUID). */
export const PAUSES_CHANGED = "pauses";
/** At most one hint per this many ms from one process. */
const ANNOUNCE_EVERY_MS = 20;

/**
 * Longest the node id's session may take to answer a heartbeat before it is replaced by a fresh
 * connection (the same as the default connect timeout: a session that needs longer is lost).
 */
const NODE_SESSION_DEADLINE_MS = 5_000;

/** The node id's lock key, as the advisory lock and pg_locks know it. */
const NODE_LOCK_KEY = "hashtextextended($1, 0)";

/**
 * Take (or take again) the node id's lock on `conn`; NodeIdInUseError names the holder when known.
 * `formerPid` is the backend of this process's own earlier session for the id: a backend busy in a
 * statement outlives the socket that was closed under it, and still holds the lock, so that session
 * (and only it: the backend with that pid holding this very lock) is terminated and the lock tried
 * again, until NODE_SESSION_DEADLINE_MS.
 */
export async function lockNodeId(id: string, conn: Sql, formerPid?: number): Promise<number> {
  const key = `jobqueue.node:${id}`;
  const started = Date.now();
  for (let ended = true; ; ) {
    const [row] = await on(conn).query<{ held: boolean; pid: number }>(`
      SELECT pg_try_advisory_lock(${NODE_LOCK_KEY}) AS held, pg_backend_pid() AS pid`, [key]);
    if (row?.held) return row.pid;
    // The last round ended nothing: the lock is someone else's.
    if (formerPid === undefined || !ended || Date.now() - started > NODE_SESSION_DEADLINE_MS) break;
    const [r] = await on(conn).query<{ ended: boolean | null }>(`
      SELECT bool_or(pg_terminate_backend(l.pid)) AS ended FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = $2
        AND (l.classid::bigint << 32) | l.objid::bigint = ${NODE_LOCK_KEY}`, [key, formerPid]);
    // Nothing to end: the former session may have just gone, so one more try; ended: wait for it to go.
    ended = r?.ended === true;
    if (ended) await Bun.sleep(20);
  }
  const holder = await on(conn).query<{ addr: string | null; since: Date | null }>(`
    SELECT host(a.client_addr) AS addr, a.backend_start AS since FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND (l.classid::bigint << 32) | l.objid::bigint = ${NODE_LOCK_KEY}`, [key]).catch(() => []);
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

  /**
   * The heartbeat's check that the node id's session still holds the lock: a session that is not the
   * one that took it (postgres.js reconnected) takes it again. A session that fails or stays silent
   * for NODE_SESSION_DEADLINE_MS is replaced by a connection of its own, which takes the lock again at
   * once. A connection the driver cannot bring back must not leave the id unheld for good:
   * postgres.js 3.4.9 was seen failing every reconnect of a connection whose socket closed while a
   * small write waited (CONNECT_TIMEOUT, again and again), and never answering a statement sent
   * between a socket's error and its close; patches/postgres@3.4.9.patch mends those (see
   * tests/postgres-driver.test.ts), and this guards against the next such fault.
   */
  async function keepNodeSession(n: NonNullable<typeof node>): Promise<void> {
    try {
      await within((async () => {
        const [session] = await on(n.conn).query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
        if (session && session.pid !== n.pid) n.pid = await lockNodeId(n.id, n.conn);
      })(), NODE_SESSION_DEADLINE_MS, () => new Error(`the node id's session got no answer within ${NODE_SESSION_DEADLINE_MS} ms`));
    } catch (err) {
      if (err instanceof NodeIdInUseError) throw err;
      if (node !== n) return; // released (close) meanwhile: nothing to hold again
      const old = n.conn;
      n.conn = db.open(1);
      old.end({ timeout: 0 }).catch(() => {});
      n.pid = await lockNodeId(n.id, n.conn, n.pid);
      // A close that came meanwhile may have ended only the old session: end this one too.
      if (node !== n) await n.conn.end({ timeout: 0 }).catch(() => {});
    }
    await db.measureClock(on(n.conn));
  }

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
      if (node !== null && node.id === id) await keepNodeSession(node);
      else await db.measureClock();
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
      const n = node;
      node = null;
      await n?.conn.end({ timeout: 1 });
    },
  };
}
