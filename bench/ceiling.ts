// ceiling.ts (bench): the HTTP ceiling for the submit benchmarks. A bare Hono app that reads the
// body, runs jobqueue's own submit validation (parseSubmitBody, toNewJob) and answers 202 like
// POST /submit, with no database. Run as `bun bench/ceiling.ts`; it logs {"msg":"listening","url"}.
import { Hono } from "hono";
import { parseSubmitBody, toNewJob } from "../src/http/submit-schema.ts";

function main(): void {
  let nextId = 0;
  const defaults = { priority: 0, maxAttempts: 5 };
  const app = new Hono();
  app.post("/submit", async (c) => {
    const text = await c.req.text();
    const parsed = parseSubmitBody(JSON.parse(text), text);
    const now = Date.now();
    const jobs = parsed.jobs.map((j) => toNewJob(j, now, defaults));
    const ids = jobs.map(() => String(++nextId));
    return c.json(parsed.batch ? { ids } : { id: ids[0] }, 202);
  });
  const server = Bun.serve({ hostname: "127.0.0.1", port: Number(process.env.PORT ?? 0), fetch: app.fetch });
  process.stderr.write(JSON.stringify({ msg: "listening", url: `http://127.0.0.1:${server.port}` }) + "\n");
  process.on("SIGTERM", () => {
    void server.stop(true);
    process.exit(0);
  });
}

main();
