// pushback-parts.test.ts: pushback.ts with the real gate on a fake clock: how AIMD cuts and restores a
// type's effective concurrency, and how the breaker opens, lets one probe through and closes.
import { afterEach, expect, test } from "bun:test";
import { AttemptTimeoutError, PermanentError, TargetBusyError, ThrottledError } from "../src/errors.ts";
import { createHandlerRegistry, type TypePolicy } from "../src/handlers/handler.ts";
import { createLogger } from "../src/logger.ts";
import { createGate, type Gate } from "../src/pool/gate.ts";
import { createPushback } from "../src/pool/pushback.ts";

let gate: Gate | null = null;
afterEach(() => gate?.stop());

function setUp(policy: Partial<TypePolicy>, poolSize = 16) {
  let now = 1_000_000;
  const registry = createHandlerRegistry({ timeoutMs: 1000, maxAttempts: 3, priority: 0 });
  registry.register("t", () => {}, policy);
  let rooms = 0;
  gate = createGate({ clock: () => now, onOpen: () => {} });
  const pushback = createPushback({ clock: () => now, registry, poolSize, gate, logger: createLogger("silent"), onRoom: () => rooms++ });
  return {
    pushback, gate,
    advance: (ms: number) => (now += ms),
    now: () => now,
    rooms: () => rooms,
    ok: (startedAt = now) => pushback.observe("t", { ok: true, cause: null, startedAt }),
    fail: (cause: unknown, startedAt = now) => pushback.observe("t", { ok: false, cause, startedAt }),
  };
}

test("a type nobody pushed back on is not limited: its own concurrency, or the pool size, is the whole story", () => {
  const p = setUp({});
  p.ok();
  expect(p.pushback.roomFor("t", 3)).toBeUndefined();
  expect(p.pushback.limited("t")).toBe(false);
  expect(p.pushback.status("t")).toEqual({ effectiveConcurrency: 16, breaker: "closed" });
  expect(setUp({ concurrency: 6 }).pushback.status("t").effectiveConcurrency).toBe(6);
});

test("overloaded answers and timeouts halve once per round, never below one; other failures do not cut; each success adds one", () => {
  const p = setUp({ concurrency: 8 });
  const round1 = p.now();
  p.advance(10);
  p.fail(new TargetBusyError("webhook answered 503"), round1);
  expect(p.pushback.status("t").effectiveConcurrency).toBe(4);
  // Requests sent before the cut answer to the old level: no second cut for them.
  p.fail(new ThrottledError(1000, "webhook answered 429"), round1);
  p.fail(new AttemptTimeoutError(1000), round1);
  expect(p.pushback.status("t").effectiveConcurrency).toBe(4);
  expect(p.pushback.roomFor("t", 3)).toBe(1);
  expect(p.pushback.roomFor("t", 6)).toBe(-2);
  p.advance(10);
  p.fail(new AttemptTimeoutError(1000));
  p.advance(10);
  p.fail(new TargetBusyError("503"));
  p.advance(10);
  p.fail(new TargetBusyError("503"));
  expect(p.pushback.status("t").effectiveConcurrency).toBe(1);
  p.fail(new Error("webhook answered 500"));
  expect(p.pushback.status("t").effectiveConcurrency).toBe(1);
  for (let i = 2; i <= 8; i++) {
    p.ok();
    expect(p.pushback.status("t").effectiveConcurrency).toBe(i);
  }
  expect(p.rooms()).toBe(7);
  p.ok();
  expect(p.pushback.status("t").effectiveConcurrency).toBe(8);
  expect(p.pushback.roomFor("t", 3)).toBeUndefined();
});

test("the breaker opens after `failures` in a row, shuts the type through the gate, then lets one probe through", () => {
  const p = setUp({ flow: { breaker: { failures: 3, coolMs: 1000 } } });
  p.fail(new Error("500"));
  p.fail(new Error("500"));
  p.ok(); // a success starts the count again
  p.fail(new PermanentError("bad job")); // a verdict on the job, not on the target
  p.fail(new Error("500"));
  p.fail(new ThrottledError(10, "429"));
  expect(p.pushback.status("t").breaker).toBe("closed");
  p.fail(new AttemptTimeoutError(1000));
  expect(p.pushback.status("t")).toEqual({
    effectiveConcurrency: 16 / 2, breaker: "open", breakerOpenUntil: new Date(p.now() + 1000).toISOString(),
  });
  expect(p.gate.shut("t")).toBe(true);
  expect(p.gate.why("t")).toBe("breaker_open");
  expect(p.pushback.roomFor("t", 0)).toBe(0);
  // Answers of requests sent before it opened change nothing while it is open.
  p.fail(new Error("500"));
  p.advance(999);
  expect(p.gate.shut("t")).toBe(true);
  p.advance(1);
  expect(p.gate.shut("t")).toBe(false);
  expect(p.pushback.status("t").breaker).toBe("half_open");
  expect(p.pushback.roomFor("t", 0)).toBe(1);
  expect(p.pushback.roomFor("t", 1)).toBe(0);
  // The probe failed: open for another cool-down.
  p.fail(new Error("500"));
  expect(p.pushback.status("t").breaker).toBe("open");
  expect(p.gate.why("t")).toBe("breaker_open");
  p.advance(1000);
  expect(p.pushback.roomFor("t", 0)).toBe(1);
  const before = p.rooms();
  p.ok();
  expect(p.pushback.status("t").breaker).toBe("closed");
  expect(p.gate.why("t")).toBeNull();
  expect(p.rooms()).toBeGreaterThan(before);
});

test("a type without a breaker never opens one, however often its target fails", () => {
  const p = setUp({});
  for (let i = 0; i < 50; i++) p.fail(new Error("500"));
  expect(p.pushback.status("t").breaker).toBe("closed");
  expect(p.gate.shut("t")).toBe(false);
});
