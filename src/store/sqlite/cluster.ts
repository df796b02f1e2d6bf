// cluster.ts: the embedded store's part in node coordination. One process per file: taking the node id
// and hints are no-ops; the heartbeat rows are kept as on PostgreSQL (the jobqueue_nodes gauge).
import type { Connection, Part } from "./connection.ts";

export function createCluster({ conn }: { conn: Connection }): Part<"holdNodeId" | "heartbeatNode" | "removeNode" | "announce" | "listen"> {
  const { op, prepare } = conn;

  const beat = prepare<never, [id: string, startedAt: number, heartbeatAt: number]>(`
    INSERT INTO jobqueue_nodes (id, started_at, heartbeat_at) VALUES (?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`);
  const othersAlive = prepare<{ n: number }, [id: string, aliveSince: number]>(
    "SELECT count(*) AS n FROM jobqueue_nodes WHERE id <> ? AND heartbeat_at >= ?");
  const forget = prepare<never, [id: string]>("DELETE FROM jobqueue_nodes WHERE id = ?");

  return {
    // The file lock (openLocked) already makes this process the only one on the store.
    holdNodeId: op("holdNodeId", () => {}),
    heartbeatNode: op("heartbeatNode", (id, now, aliveSince) => {
      beat().run(id, now, now);
      return 1 + (othersAlive().get(id, aliveSince)?.n ?? 0);
    }),
    removeNode: op("removeNode", (id) => {
      forget().run(id);
    }),
    // One process per file: there is nobody to hint or hear.
    announce: op("announce", () => {}),
    listen: op("listen", () => async () => {}),
  };
}
