// from-config.ts: builds the handler registry of the shipped binary from the job types file
// (webhook and built-in handlers). Library users register their own functions instead.
import type { TypeConfig } from "../types-config.ts";
import { createHandlerRegistry, type HandlerRegistry, type TypePolicy } from "./handler.ts";
import { createWebhookHandler } from "./webhook.ts";

export function registryFromTypes(types: Map<string, TypeConfig>, defaults: TypePolicy): HandlerRegistry {
  const registry = createHandlerRegistry(defaults);
  for (const [name, t] of types) {
    const policy = { timeoutMs: t.timeoutMs, maxAttempts: t.maxAttempts };
    if (t.kind === "webhook") registry.register(name, createWebhookHandler({ url: t.url, headers: t.headers }), policy);
    else registry.register(name, () => {}, policy);
  }
  return registry;
}
