-- 019_trace.sql: the W3C trace context (traceparent) a job was submitted with, carried through every
-- move like the flow-control columns and handed to its handler (webhook header, pull API), so the
-- producer's trace continues in the worker. NULL when the submit carried none.
ALTER TABLE pending_jobs ADD COLUMN trace text;
ALTER TABLE inflight_jobs ADD COLUMN trace text;
ALTER TABLE dead_jobs ADD COLUMN trace text;
