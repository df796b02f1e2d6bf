// types-routes.ts: the job types over HTTP: GET /types (each registered type's policy, paused state
// and counts) and POST /types/:type/pause, /resume. Mounted by app.ts behind the same gates as every
// route. No SQL and no pool here: every effect goes through the queue's JobTypes.
import type { Hono } from "hono";
import type { z } from "zod";
import type { JobTypes } from "../ops/job-types.ts";
import type { pauseReply, typesReply } from "./api-schema.ts";

export interface TypesRouteDeps {
  types: JobTypes;
  /**
   * What flow control can tell of a type now (effective concurrency, breaker state, tokens left):
   * merged into the type's entry. Its fields never replace the entry's own.
   */
  flowStatus?: (type: string) => Record<string, unknown>;
}

/** The routes and the methods each allows (app.ts answers any other method with 405). */
export const TYPES_ROUTES: Record<string, string[]> = {
  "/types": ["GET", "HEAD"],
  "/types/:type/pause": ["POST"],
  "/types/:type/resume": ["POST"],
};

export function mountTypesRoutes(app: Hono, deps: TypesRouteDeps): void {
  app.get("/types", async (c) => {
    const types = (await deps.types.list()).map((t) => (t.registered ? { ...deps.flowStatus?.(t.type), ...t } : { ...t }));
    return c.json({ types } satisfies z.input<typeof typesReply>);
  });
  app.post("/types/:type/pause", async (c) => c.json((await deps.types.pause(c.req.param("type"))) satisfies z.infer<typeof pauseReply>));
  app.post("/types/:type/resume", async (c) => c.json((await deps.types.resume(c.req.param("type"))) satisfies z.infer<typeof pauseReply>));
}
