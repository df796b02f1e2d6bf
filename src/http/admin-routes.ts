// admin-routes.ts: the operators' routes over HTTP: GET /admin/backup streams a consistent copy of
// the embedded store's database file. Mounted by app.ts behind the same gates as every route. No
// SQL and no file handling here: the copy comes from the queue's backup().
import type { Hono } from "hono";
import { methodNotAllowed } from "../errors.ts";
import type { QueueApi } from "../queue/api.ts";

/** The routes and the methods each allows (app.ts answers any other method with 405). */
export const ADMIN_ROUTES: Record<string, string[]> = {
  "/admin/backup": ["GET"],
};

/** The backup's media type (a SQLite database file, as IANA registers it). */
export const BACKUP_MEDIA_TYPE = "application/vnd.sqlite3";
/** Headers of a backup answer: its length and SHA-256 (the body is streamed, so no content-length). */
export const BACKUP_BYTES_HEADER = "x-backup-bytes";
export const BACKUP_SHA256_HEADER = "x-backup-sha256";

export function mountAdminRoutes(app: Hono, deps: Pick<QueueApi, "backup">): void {
  app.get("/admin/backup", async (c) => {
    // Hono answers HEAD with the GET route: that would make a whole copy only to throw it away.
    if (c.req.method !== "GET") throw methodNotAllowed(c.req.method, c.req.path, ADMIN_ROUTES["/admin/backup"]!);
    const snapshot = await deps.backup();
    const name = `jobqueue-${new Date().toISOString().replace(/[:.]/g, "-")}.db`;
    return new Response(snapshot.stream, {
      status: 200,
      headers: {
        "content-type": BACKUP_MEDIA_TYPE,
        "content-disposition": `attachment; filename="${name}"`,
        "cache-control": "no-store",
        [BACKUP_BYTES_HEADER]: String(snapshot.bytes),
        [BACKUP_SHA256_HEADER]: snapshot.sha256,
      },
    });
  });
}
