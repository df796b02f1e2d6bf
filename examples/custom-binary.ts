// custom-binary.ts: a jobqueue executable of your own, with a job type written in TypeScript beside
// those of the types file. Everything else (flags, environment, store, token, HTTP API, shutdown) is
// the stock server's. Build it with: bun build --compile examples/custom-binary.ts --outfile greeter
import { createLogger, loadConfig, loadRegistry, PermanentError, startServer } from "../src/index.ts";

const { config } = loadConfig(process.env, process.argv.slice(2), "localhost");
const logger = createLogger(config.logLevel);
// The types file's job types (--config), if any, then ours.
const registry = await loadRegistry(config, logger, process.env);
registry.register("greet", async (job, signal) => {
  const { name } = job.payload as { name?: string };
  if (!name) throw new PermanentError("no name to greet"); // dead at once, no retry
  signal.throwIfAborted(); // a timeout, cancel or shutdown ends the attempt
  return `hello, ${name}`; // a string result is kept with --keep-completed
});

const server = await startServer({ config, logger, registry, env: process.env });
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => void server.stop(config.shutdownGraceMs).then(() => process.exit(0)));
}
