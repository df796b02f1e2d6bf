// test-server.ts (test support): a real server (startServer: Bun.serve on 127.0.0.1, port 0) on an
// embedded store in a temp file, whose "noop" jobs hold their worker until shutdown, so every row a
// request wrote stays countable in the store.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { createHandlerRegistry, type Handler } from "../../src/handlers/handler.ts";
import { createLogger, type Logger } from "../../src/logger.ts";
import { startServer, type RunningServer } from "../../src/server.ts";
import { createSqliteStore } from "../../src/store/sqlite.ts";

/** Never finishes on its own: the job stays inflight (one worker) or pending until shutdown. */
export const holdUntilShutdown: Handler = (_job, signal) =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));

export interface TestServer {
  server: RunningServer;
  /** Rows in every table of the store (pending + inflight + dead). */
  rows(): Promise<number>;
  stop(): Promise<void>;
}

export async function startTestServer(opts: {
  args?: string[];
  env?: Record<string, string>;
  handler?: Handler;
  logger?: Logger;
} = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), "jobqueue-sec-"));
  const store = createSqliteStore({ path: join(dir, "jobs.db"), synchronous: "NORMAL" });
  const registry = createHandlerRegistry({ timeoutMs: 3_600_000, maxAttempts: 5, priority: 0 });
  registry.register("noop", opts.handler ?? holdUntilShutdown);
  const argv = ["--port", "0", "--host", "127.0.0.1", "--workers", "1", ...(opts.args ?? [])];
  const { config } = loadConfig(opts.env ?? {}, argv, "test");
  const server = await startServer({ config, logger: opts.logger ?? createLogger("silent"), registry, store });
  return {
    server,
    async rows() {
      const c = await store.counts();
      return c.pending + c.inflight + c.dead;
    },
    async stop() {
      await server.stop(0);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
