// from-config.ts: builds the handler registry of the shipped binary from the job types file
// (webhook, command and built-in handlers, and pull types that remote workers run), checking
// --webhook-secret against each type it signs. Library users register their own functions instead.
import type { TypeConfig } from "../config/types-file.ts";
import { ConfigError } from "../errors.ts";
import { createHandlerRegistry, type HandlerRegistry, type JobContext, type TypePolicy } from "./handler.ts";
import { createExecHandler } from "./exec.ts";
import { createWebhookHandler } from "./webhook.ts";
import { DEFAULT_SIGNATURE_SCHEME, secretProblem } from "./signing.ts";
import type { Clock } from "../clock.ts";

export interface WebhookDefaults {
  /** Signs deliveries of webhook types that set no secret of their own. */
  webhookSecret?: string;
  /** Epoch ms, for signature timestamps. */
  clock?: Clock;
  fetch?: typeof fetch;
  /** The whole environment of command types' programs (the server's own may hold secrets). */
  commandEnv?: Record<string, string>;
}

export function registryFromTypes(
  types: Map<string, TypeConfig>,
  defaults: TypePolicy,
  webhook: WebhookDefaults = {},
): HandlerRegistry {
  const registry = createHandlerRegistry(defaults);
  for (const [name, t] of types) {
    const policy: Partial<TypePolicy> = {
      timeoutMs: t.timeoutMs, maxAttempts: t.maxAttempts,
      ...(t.priority !== undefined && { priority: t.priority }),
      ...(t.concurrency !== undefined && { concurrency: t.concurrency }),
      ...(t.backoff !== undefined && { backoff: t.backoff }),
      ...(t.flow !== undefined && { flow: t.flow }),
    };
    if (t.kind === "webhook") {
      const secret = t.secret ?? webhook.webhookSecret;
      const scheme = t.signature ?? DEFAULT_SIGNATURE_SCHEME;
      // The types file checked the type's own secret; the shared one meets the type's scheme here.
      const problem = t.secret === undefined && secret !== undefined ? secretProblem(scheme, secret) : null;
      if (problem !== null) {
        throw new ConfigError(`--webhook-secret / JOBQUEUE_WEBHOOK_SECRET signs type ${JSON.stringify(name)}, whose signature is "${scheme}": ${problem}`);
      }
      if (t.signature !== undefined && secret === undefined) {
        throw new ConfigError(`type ${JSON.stringify(name)} sets signature = "${scheme}" but has no secret: give it secret or secret_env, or set --webhook-secret / JOBQUEUE_WEBHOOK_SECRET`);
      }
      const handler = createWebhookHandler({
        url: t.url, headers: t.headers, clock: webhook.clock, fetch: webhook.fetch,
        ...(secret !== undefined && { secret, signature: scheme }),
      });
      registry.register(name, handler, policy);
    } else if (t.kind === "pull") {
      registry.registerPull(name, policy);
    } else if (t.kind === "exec") {
      registry.register(name, createExecHandler({ command: t.command, env: webhook.commandEnv ?? {} }), policy);
    } else {
      // One parameter: it takes no signal, so the pool makes none (attempt.ts).
      registry.register(name, (_job: JobContext) => {}, policy);
    }
  }
  return registry;
}
