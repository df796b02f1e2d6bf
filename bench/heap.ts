// heap.ts (bench): PriorityHeap (src/queue/heap.ts) against npm flatqueue on the same random keys (row 7):
// push-heavy (push 1M, pop all) and pop-heavy (a steady 100k heap, pop+push interleaved). Runs the
// subjects alternately, several rounds, and reports the median. Pure CPU: no database.
import { PriorityHeap } from "../src/queue/heap.ts";
import { type Result, emit, fmtInt, log, median } from "./lib.ts";

interface FlatQueueLike {
  push(item: number, priority: number): void;
  pop(): number | undefined;
  readonly length: number;
}
/** With a capacity, flatqueue 3 uses fixed-size typed arrays and cannot grow. */
type FlatQueueCtor = new (capacity?: number) => FlatQueueLike;

/** bench/ has its own dependencies; a computed specifier keeps the root typecheck free of them. */
async function loadFlatQueue(): Promise<FlatQueueCtor> {
  const specifier = "flatqueue";
  const mod = (await import(specifier)) as { default: FlatQueueCtor };
  return mod.default;
}

/** The operations both heaps are measured through (ids are the integers 0..n-1). */
interface Subject {
  name: string;
  /** `capacity`: the most entries the run will hold (only the fixed-capacity variant uses it). */
  make(capacity: number): { push(id: number, key: number): void; pop(): number; size(): number };
}

const PUSH_N = 1_000_000;
const STEADY_N = 100_000;
/** Operations in the pop-heavy run: each step is one pop and one push. */
const STEADY_OPS = 5_000_000;
/** Measured rounds per process (after one warm-up round), and processes per heap. */
const ROUNDS = 2;
const PROCESSES = 5;
const POP_HEAVY_TARGET = 1.5;

/** Deterministic keys (xorshift), so every subject and round sees the same sequence. */
function randomKeys(n: number, seed: number): Float64Array {
  const keys = new Float64Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    keys[i] = (x >>> 0) / 4294967296 * 1e9; // like epoch-ms keys: large, mostly distinct
  }
  return keys;
}

/** Push every key, then pop every entry; returns ops/s (push + pop) and a checksum. */
function pushHeavy(subject: Subject, keys: Float64Array): { opsPerS: number; check: number } {
  const h = subject.make(keys.length);
  Bun.gc(true); // garbage of earlier rounds is not this round's cost
  const t0 = performance.now();
  for (let i = 0; i < keys.length; i++) h.push(i, keys[i]!);
  let check = 0;
  while (h.size() > 0) check = (check + h.pop()) % 1_000_003;
  const s = (performance.now() - t0) / 1000;
  return { opsPerS: (2 * keys.length) / s, check };
}

/**
 * A heap of STEADY_N entries (filled untimed), then STEADY_OPS/2 steps of pop one + push one whose
 * key is random plus a clock that moves forward (new jobs tend to sort late, as in a queue).
 */
function popHeavy(subject: Subject, fill: Float64Array, steps: Float64Array): { opsPerS: number; check: number } {
  const h = subject.make(fill.length + 1);
  for (let i = 0; i < fill.length; i++) h.push(i, fill[i]!);
  let check = 0;
  let nextId = fill.length;
  Bun.gc(true);
  const t0 = performance.now();
  for (let i = 0; i < steps.length; i++) {
    const id = h.pop();
    check = (check + id) % 1_000_003;
    h.push(nextId++, i * 200 + steps[i]!);
  }
  const s = (performance.now() - t0) / 1000;
  return { opsPerS: (2 * steps.length) / s, check };
}

async function subjects(): Promise<Subject[]> {
  const FlatQueue = await loadFlatQueue();
  return [
    {
      name: "PriorityHeap",
      make: (cap) => {
        const h = new PriorityHeap(cap);
        return { push: (id, key) => h.push(id, key, 0), pop: () => h.pop(), size: () => h.size };
      },
    },
    {
      name: "flatqueue",
      make: () => {
        const q = new FlatQueue();
        return { push: (id, key) => q.push(id, key), pop: () => q.pop() ?? -1, size: () => q.length };
      },
    },
    {
      name: "flatqueue-typed",
      make: (cap) => {
        const q = new FlatQueue(cap);
        return { push: (id, key) => q.push(id, key), pop: () => q.pop() ?? -1, size: () => q.length };
      },
    },
  ];
}

/**
 * One subject in this process: a warm-up round, then ROUNDS measured ones; prints every reading.
 * Each subject gets its own process so no call site ever sees two heap classes (or flatqueue's
 * two array kinds) and loses its JIT specialisation.
 */
async function runSubject(name: string): Promise<void> {
  const subject = (await subjects()).find((s) => s.name === name);
  if (!subject) throw new Error(`unknown heap subject ${name}`);
  const pushKeys = randomKeys(PUSH_N, 12345);
  const fill = randomKeys(STEADY_N, 777);
  const steps = randomKeys(STEADY_OPS / 2, 4242);
  const push: number[] = [];
  const pop: number[] = [];
  let check = 0; // consumed below so no loop is optimised away
  for (let round = 0; round <= ROUNDS; round++) {
    const a = pushHeavy(subject, pushKeys);
    const b = popHeavy(subject, fill, steps);
    check += a.check + b.check;
    if (round === 0) continue;
    push.push(a.opsPerS);
    pop.push(b.opsPerS);
  }
  if (check < 0) throw new Error("unreachable: ids are never negative");
  process.stdout.write(JSON.stringify({ push, pop }) + "\n");
}

async function measureInChild(name: string): Promise<{ push: number[]; pop: number[] }> {
  const proc = Bun.spawn(["bun", import.meta.path, "--subject", name], { stdout: "pipe", stderr: "inherit" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) throw new Error(`heap subject ${name} exited with ${code}`);
  return JSON.parse(out.trim().split("\n").pop()!) as { push: number[]; pop: number[] };
}

/**
 * The JIT's choices differ between processes (runs of one heap spread by up to ±20 % here), so every
 * heap runs in PROCESSES fresh processes, interleaved, and the median of all readings counts.
 */
export async function main(): Promise<Result[]> {
  const names = (await subjects()).map((s) => s.name);
  const got: Record<string, { push: number[]; pop: number[] }> = {};
  for (let p = 0; p < PROCESSES; p++) {
    log(`heap: process round ${p + 1} of ${PROCESSES}`);
    for (const name of names) {
      const r = await measureInChild(name);
      const all = (got[name] ??= { push: [], pop: [] });
      all.push.push(...r.push);
      all.pop.push(...r.pop);
    }
  }
  const spread = (xs: number[]) => `${fmtInt(Math.min(...xs))}–${fmtInt(Math.max(...xs))}`;
  const ours = got.PriorityHeap!, theirs = got.flatqueue!, typed = got["flatqueue-typed"]!;
  const row = (kind: "push" | "pop", target?: number): Result => {
    const a = median(ours[kind]), b = median(theirs[kind]), t = median(typed[kind]);
    return {
      row: "7", bench: `Heap, ${kind}-heavy`, subject: "PriorityHeap vs flatqueue 3.1",
      result: `${fmtInt(a)} vs ${fmtInt(b)} ops/s = ${(a / b).toFixed(2)}×`,
      ...(target === undefined ? {} : { target: `≥ ${target}× flatqueue`, met: a / b >= target }),
      notes: (kind === "push"
        ? `push ${fmtInt(PUSH_N)} random keys then pop all; ops = pushes + pops`
        : `steady heap of ${fmtInt(STEADY_N)}, ${fmtInt(STEADY_OPS)} ops = ${fmtInt(STEADY_OPS / 2)} × (pop + push a later key)`) +
        `; median of ${PROCESSES} fresh processes × ${ROUNDS} rounds after a warm-up round, heaps interleaved;` +
        ` range PriorityHeap ${spread(ours[kind])}, flatqueue ${spread(theirs[kind])} ops/s; flatqueue in its default growable mode` +
        ` (its fixed-capacity typed-array mode: ${fmtInt(t)} ops/s, PriorityHeap ${(a / t).toFixed(2)}× that)`,
    };
  };
  return [row("push"), row("pop", POP_HEAVY_TARGET)];
}

if (import.meta.main) {
  const i = process.argv.indexOf("--subject");
  if (i >= 0) await runSubject(process.argv[i + 1] ?? "");
  else for (const r of await main()) emit(r);
}
