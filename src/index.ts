// index.ts: the library API. Register TypeScript handlers, start a queue in-process, and serve it.
export { createJobQueue, type JobQueue, type JobQueueOptions } from "./queue/jobqueue.ts";
export { startServer, type RunningServer } from "./server.ts";
export { loadConfig, helpText, ConfigError, type Config } from "./config/config.ts";
export { createHandlerRegistry, type Handler, type HandlerRegistry, type JobContext, type TypePolicy } from "./handlers/handler.ts";
export { createWebhookHandler } from "./handlers/webhook.ts";
export { createPostgresStore } from "./store/postgres/index.ts";
export type { Store } from "./store/store.ts";
export type { NewJob, JobView, JobState } from "./store/rows.ts";
export { PermanentError, JobQueueError } from "./errors.ts";
export { createLogger, type Logger } from "./logger.ts";
export { createClient, JobQueueClientError, type JobQueueClient, type ClientOptions, type SubmitJob, type Job } from "./client/client.ts";
