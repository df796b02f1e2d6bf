// index.ts: the library API: what the binary is built from, for a program of your own. Register
// TypeScript handlers, open either store, start a queue in-process with the option table's defaults,
// serve its HTTP API (or start the whole server), and talk to a running server with the typed client.
export { createJobQueue, type JobQueue, type JobQueueOptions, type QueueSettings } from "./queue/jobqueue.ts";
export type { QueueApi } from "./queue/api.ts";
export { loadRegistry, openStore, startServer, type RunningServer } from "./server.ts";
export { createApp, type HttpSettings } from "./http/app.ts";
export { defaultConfig, helpText, httpSettings, loadConfig, queueSettings, type Config } from "./config/config.ts";
export { createHandlerRegistry, type Handler, type HandlerRegistry, type JobContext, type TypePolicy } from "./handlers/handler.ts";
export { createWebhookHandler } from "./handlers/webhook.ts";
export { createPostgresStore, type PostgresStoreOptions } from "./store/postgres/index.ts";
export { createSqliteStore, type SqliteStoreOptions } from "./store/sqlite/index.ts";
export type { Store } from "./store/store.ts";
export type { NewJob, JobView, JobState } from "./store/rows.ts";
export {
  CancelledError, ConfigError, JobQueueError, LeaseLostError, PermanentError, ShutdownError, AttemptTimeoutError,
  TargetBusyError, ThrottledError,
  NodeIdInUseError, StoreLockedError, StoreOutcomeUnknownError, StoreRejectedError, StoreUnavailableError,
} from "./errors.ts";
export type { FlowStatus } from "./pool/pushback.ts";
export { createLogger, type Logger } from "./logger.ts";
export { createClient, JobQueueClientError, type JobQueueClient, type ClientOptions, type SubmitJob, type Job } from "./client/client.ts";
