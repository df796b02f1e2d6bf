// metrics.test.ts: the registry's exposition text, read back by a small strict parser, and, where
// promtool is installed, checked by Prometheus's own parser and linter.
import { describe, expect, test } from "bun:test";
import { createMetrics, LATENCY_BUCKETS_SECONDS, type Labels } from "../src/metrics/registry.ts";
import { createQueueMetrics, OLDEST_SCAN_EVERY_MS, OLDEST_SCAN_EXACT_BELOW } from "../src/queue/queue-metrics.ts";
import { createScheduler } from "../src/queue/scheduler.ts";
import { createLogger } from "../src/logger.ts";

interface Sample {
  name: string;
  labels: Labels;
  value: number;
}
interface Exposition {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/** Parses text format 0.0.4 strictly enough that malformed output throws. */
function parse(text: string): Exposition {
  const out: Exposition = { help: new Map(), type: new Map(), samples: [] };
  if (text !== "" && !text.endsWith("\n")) throw new Error("text must end with a newline");
  for (const line of text.split("\n").slice(0, -1)) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, "HELP" | "TYPE", string, string];
      const map = kind === "HELP" ? out.help : out.type;
      if (map.has(name)) throw new Error(`second ${kind} for ${name}`);
      map.set(name, kind === "HELP" ? unescape(rest, false) : rest);
      continue;
    }
    const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!head) throw new Error(`bad line: ${line}`);
    const name = head[1]!;
    let i = name.length;
    const labels: Labels = {};
    if (line[i] === "{") {
      i++;
      while (line[i] !== "}") {
        const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(i));
        if (!label) throw new Error(`bad label at ${i}: ${line}`);
        i += label[0].length;
        let raw = "";
        while (line[i] !== '"') {
          if (i >= line.length) throw new Error(`unterminated label value: ${line}`);
          if (line[i] === "\\") raw += line[i++];
          raw += line[i++];
        }
        i++;
        labels[label[1]!] = unescape(raw, true);
        if (line[i] === ",") i++;
        else if (line[i] !== "}") throw new Error(`bad label list: ${line}`);
      }
      i++;
    }
    const value = /^ (NaN|[+-]Inf|[-+]?[0-9.]+(?:e[-+]?[0-9]+)?)$/.exec(line.slice(i));
    if (!value) throw new Error(`bad value: ${line}`);
    const v = value[1]!;
    out.samples.push({ name, labels, value: v === "NaN" ? NaN : v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v) });
  }
  return out;
}

function unescape(raw: string, quotes: boolean): string {
  return raw.replace(/\\(.)/g, (whole, c: string) => {
    if (c === "n") return "\n";
    if (c === "\\" || (quotes && c === '"')) return c;
    throw new Error(`bad escape ${whole}`);
  });
}

function sample(e: Exposition, name: string, labels: Labels = {}): number | undefined {
  const key = JSON.stringify(Object.entries(labels).sort());
  const found = e.samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === key);
  if (found.length > 1) throw new Error(`${name} ${key} printed ${found.length} times`);
  return found[0]?.value;
}

describe("counters", () => {
  test("an unlabelled counter prints 0 before its first increment and then its running total", () => {
    const m = createMetrics();
    const c = m.counter("jobs_submitted_total", "Jobs accepted.");
    expect(sample(parse(m.render()), "jobs_submitted_total")).toBe(0);
    c.inc();
    c.inc(undefined, 4);
    expect(sample(parse(m.render()), "jobs_submitted_total")).toBe(5);
    expect(c.get()).toBe(5);
  });

  test("a labelled counter never incremented prints only its HELP and TYPE lines", () => {
    const m = createMetrics();
    m.counter("jobs_failed_total", "Failed runs.", ["type"]);
    expect(m.render()).toBe("# HELP jobs_failed_total Failed runs.\n# TYPE jobs_failed_total counter\n");
  });

  test("each label set is its own series, and get sums the series matching a partial filter", () => {
    const m = createMetrics();
    const c = m.counter("jobs_done_total", "Done.", ["type", "outcome"]);
    c.inc({ type: "mail", outcome: "ok" });
    c.inc({ outcome: "ok", type: "mail" }, 2);
    c.inc({ type: "mail", outcome: "dead" });
    c.labels({ type: "hook", outcome: "ok" }).inc(10);
    const e = parse(m.render());
    expect(sample(e, "jobs_done_total", { type: "mail", outcome: "ok" })).toBe(3);
    expect(sample(e, "jobs_done_total", { type: "mail", outcome: "dead" })).toBe(1);
    expect(sample(e, "jobs_done_total", { type: "hook", outcome: "ok" })).toBe(10);
    expect(c.get()).toBe(14);
    expect(c.get({ outcome: "ok" })).toBe(13);
    expect(m.counterValue("jobs_done_total", { type: "mail" })).toBe(4);
    expect(m.counterValue("jobs_done_total", { type: "mail", outcome: "ok" })).toBe(3);
    expect(m.counterValue("jobs_done_total", { type: "none" })).toBe(0);
  });

  test("a bound series and inc with the same labels update the same total", () => {
    const m = createMetrics();
    const c = m.counter("x_total", "x", ["a"]);
    const bound = c.labels({ a: "1" });
    bound.inc();
    c.inc({ a: "1" });
    expect(c.labels({ a: "1" })).toBe(bound);
    expect(c.get({ a: "1" })).toBe(2);
  });

  test("reading an unknown counter by name throws", () => {
    expect(() => createMetrics().counterValue("nope_total")).toThrow("no counter named nope_total");
  });

  test("a counter whose name does not end in _total is refused", () => {
    expect(() => createMetrics().counter("jobs", "x")).toThrow("_total");
  });

  test("missing, extra, misnamed or non-string labels are refused", () => {
    const m = createMetrics();
    const c = m.counter("a_total", "a", ["type"]);
    expect(() => c.inc()).toThrow("needs labels type");
    expect(() => c.inc({})).toThrow("needs labels type");
    expect(() => c.inc({ kind: "x" })).toThrow("needs labels type");
    expect(() => c.inc({ type: "x", extra: "y" })).toThrow("needs labels type");
    expect(() => c.inc({ type: 3 as unknown as string })).toThrow("string values");
    const plain = m.counter("b_total", "b");
    expect(() => plain.inc({ type: "x" })).toThrow("has no label type");
    expect(m.render()).not.toContain("a_total{");
  });

  test("negative, NaN and infinite increments are refused and leave the total unchanged", () => {
    const m = createMetrics();
    const c = m.counter("a_total", "a");
    c.inc(undefined, 2);
    for (const by of [-1, NaN, Infinity]) expect(() => c.inc(undefined, by)).toThrow(RangeError);
    expect(c.get()).toBe(2);
  });
});

describe("registration", () => {
  test("registering a name twice throws, whatever the kinds", () => {
    const m = createMetrics();
    m.counter("a_total", "a");
    m.gauge("g", "g", () => 1);
    m.histogram("h", "h", [1]);
    expect(() => m.counter("a_total", "again")).toThrow("already registered");
    expect(() => m.gauge("a_total", "again", () => 1)).toThrow("already registered");
    expect(() => m.histogram("g", "again", [1])).toThrow("already registered");
    expect(() => m.gauge("h_count", "clashes with the histogram's series", () => 1)).toThrow("already registered");
  });

  test("invalid metric and label names are refused", () => {
    const m = createMetrics();
    expect(() => m.gauge("1abc", "x", () => 1)).toThrow("invalid metric name");
    expect(() => m.gauge("a-b", "x", () => 1)).toThrow("invalid metric name");
    expect(() => m.counter("x_total", "x", ["bad-name"])).toThrow("invalid label name");
    expect(() => m.counter("y_total", "x", ["__reserved"])).toThrow("invalid label name");
    expect(() => m.counter("z_total", "x", ["a", "a"])).toThrow("repeated label name");
    expect(() => m.histogram("h", "x", [1], ["le"])).toThrow('"le"');
  });

  test("histogram buckets must be finite and strictly increasing; a trailing +Inf is allowed", () => {
    const m = createMetrics();
    expect(() => m.histogram("h1", "x", [1, 1])).toThrow("strictly increasing");
    expect(() => m.histogram("h2", "x", [2, 1])).toThrow("strictly increasing");
    expect(() => m.histogram("h3", "x", [NaN])).toThrow("strictly increasing");
    m.histogram("h4", "x", [1, Infinity]).observe(5);
    expect(m.render().match(/le="\+Inf"/g)).toHaveLength(1);
  });

  test("two registries share nothing", () => {
    const a = createMetrics();
    const b = createMetrics();
    a.counter("x_total", "x").inc();
    b.counter("x_total", "x");
    expect(b.counterValue("x_total")).toBe(0);
    expect(a.counterValue("x_total")).toBe(1);
  });
});

describe("gauges", () => {
  test("a gauge is read at every scrape", () => {
    const m = createMetrics();
    let depth = 3;
    m.gauge("queue_depth", "Ready jobs.", () => depth);
    expect(sample(parse(m.render()), "queue_depth")).toBe(3);
    depth = 7;
    expect(sample(parse(m.render()), "queue_depth")).toBe(7);
  });

  test("a labelled gauge prints one series per entry, and an empty reading prints only HELP and TYPE", () => {
    const m = createMetrics();
    let rows = [
      { labels: { table: "pending" }, value: 4 },
      { labels: { table: "dead" }, value: 1 },
    ];
    m.gauge("jobs", "Jobs per table.", () => rows);
    const e = parse(m.render());
    expect(sample(e, "jobs", { table: "pending" })).toBe(4);
    expect(sample(e, "jobs", { table: "dead" })).toBe(1);
    rows = [];
    expect(m.render()).toBe("# HELP jobs Jobs per table.\n# TYPE jobs gauge\n");
  });

  test("a gauge whose read throws is left out of that scrape and the rest still renders", () => {
    const failures: string[] = [];
    const m = createMetrics({ onReadError: (name, err) => failures.push(`${name}: ${(err as Error).message}`) });
    let broken = true;
    m.gauge("store_rows", "Rows.", () => {
      if (broken) throw new Error("database down");
      return 2;
    });
    m.gauge("bad_label", "Bad.", () => [{ labels: { "no-dash": "x" }, value: 1 }]);
    m.counter("ok_total", "Still here.").inc();
    const e = parse(m.render());
    expect(e.help.has("store_rows")).toBe(false);
    expect(e.help.has("bad_label")).toBe(false);
    expect(sample(e, "ok_total")).toBe(1);
    expect(failures).toEqual(["store_rows: database down", 'bad_label: bad_label: invalid label name "no-dash"']);
    broken = false;
    expect(sample(parse(m.render()), "store_rows")).toBe(2);
  });

  test("negative gauge readings print as 0", () => {
    const m = createMetrics();
    m.gauge("a", "a", () => -3);
    m.gauge("b", "b", () => -Infinity);
    m.gauge("c", "c", () => [{ labels: { k: "v" }, value: -0.5 }]);
    const e = parse(m.render());
    expect([sample(e, "a"), sample(e, "b"), sample(e, "c", { k: "v" })]).toEqual([0, 0, 0]);
  });
});

describe("histograms", () => {
  test("buckets are cumulative, bounds are inclusive, and +Inf, _sum and _count close each series", () => {
    const m = createMetrics();
    const h = m.histogram("job_seconds", "Run time.", [0.1, 1, 10]);
    for (const v of [0.05, 0.1, 0.5, 1, 3, 20, 30]) h.observe(v);
    const e = parse(m.render());
    const bucket = (le: string) => sample(e, "job_seconds_bucket", { le });
    expect([bucket("0.1"), bucket("1"), bucket("10"), bucket("+Inf")]).toEqual([2, 4, 5, 7]);
    expect(sample(e, "job_seconds_sum")).toBeCloseTo(54.65, 9);
    expect(sample(e, "job_seconds_count")).toBe(7);
    expect(e.type.get("job_seconds")).toBe("histogram");
  });

  test("an unlabelled histogram prints zeroed buckets before its first observation", () => {
    const m = createMetrics();
    m.histogram("h", "h", [1, 2]);
    const e = parse(m.render());
    expect(e.samples.map((s) => s.value)).toEqual([0, 0, 0, 0, 0]);
  });

  test("NaN observations are ignored so that _sum stays a number", () => {
    const m = createMetrics();
    const h = m.histogram("h", "h", [1]);
    h.observe(NaN);
    h.observe(0.5);
    const e = parse(m.render());
    expect([sample(e, "h_sum"), sample(e, "h_count")]).toEqual([0.5, 1]);
  });

  test("a labelled histogram keeps its labels first and le last on each bucket line", () => {
    const m = createMetrics();
    const h = m.histogram("lat_seconds", "l", [1], ["type"]);
    h.observe(0.5, { type: "mail" });
    h.labels({ type: "hook" }).observe(2);
    const text = m.render();
    expect(text).toContain('lat_seconds_bucket{type="mail",le="1"} 1\n');
    expect(text).toContain('lat_seconds_bucket{type="hook",le="1"} 0\n');
    expect(text).toContain('lat_seconds_bucket{type="hook",le="+Inf"} 1\n');
    expect(text).toContain('lat_seconds_sum{type="hook"} 2\n');
    expect(text).toContain('lat_seconds_count{type="mail"} 1\n');
  });

  test("the default latency buckets are strictly increasing and print as plain decimals", () => {
    expect(LATENCY_BUCKETS_SECONDS.every((b, i) => i === 0 || b > LATENCY_BUCKETS_SECONDS[i - 1]!)).toBe(true);
    const m = createMetrics();
    m.histogram("d_seconds", "d", LATENCY_BUCKETS_SECONDS);
    const les = parse(m.render()).samples.flatMap((s) => (s.labels.le === undefined ? [] : [s.labels.le]));
    expect(les).toEqual([...LATENCY_BUCKETS_SECONDS.map(String), "+Inf"]);
    expect(les).toContain("0.0025");
  });
});

describe("text format", () => {
  test("label values escape backslash, double quote and newline, and read back unchanged", () => {
    const m = createMetrics();
    const tricky = 'a\\b "quoted"\nnext line {}=,';
    m.counter("e_total", "e", ["v"]).inc({ v: tricky });
    const text = m.render();
    expect(text).toContain('e_total{v="a\\\\b \\"quoted\\"\\nnext line {}=,"} 1\n');
    expect(parse(text).samples[0]?.labels.v).toBe(tricky);
  });

  test("HELP text escapes backslash and newline but leaves quotes alone", () => {
    const m = createMetrics();
    m.gauge("g", 'C:\\path "x"\nsecond line', () => 1);
    const text = m.render();
    expect(text.split("\n")[0]).toBe('# HELP g C:\\\\path "x"\\nsecond line');
    expect(parse(text).help.get("g")).toBe('C:\\path "x"\nsecond line');
  });

  test("special and large numbers print in forms Prometheus parses", () => {
    const m = createMetrics();
    m.gauge("nan", "n", () => NaN);
    m.gauge("inf", "i", () => Infinity);
    m.gauge("big", "b", () => 1e21);
    m.gauge("tiny", "t", () => 1e-7);
    m.gauge("int", "i", () => 42);
    m.gauge("negzero", "z", () => -0);
    const text = m.render();
    for (const line of ["nan NaN", "inf +Inf", "big 1e+21", "tiny 1e-7", "int 42", "negzero 0"]) {
      expect(text).toContain(`\n${line}\n`);
    }
    const e = parse(text);
    expect(sample(e, "nan")).toBeNaN();
    expect(sample(e, "big")).toBe(1e21);
  });

  test("every family prints HELP and TYPE once, in registration order, and the text ends with a newline", () => {
    const m = createMetrics();
    m.counter("c_total", "c", ["k"]).inc({ k: "1" });
    m.counter("c_total2_total", "c2").inc();
    m.gauge("g", "g", () => [
      { labels: { k: "1" }, value: 1 },
      { labels: { k: "2" }, value: 2 },
    ]);
    m.histogram("h", "h", [1], ["k"]).observe(1, { k: "a" });
    const text = m.render();
    expect(text.endsWith("\n")).toBe(true);
    const e = parse(text);
    expect([...e.type]).toEqual([
      ["c_total", "counter"],
      ["c_total2_total", "counter"],
      ["g", "gauge"],
      ["h", "histogram"],
    ]);
    expect([...e.help.keys()]).toEqual([...e.type.keys()]);
  });

  test("an empty registry renders an empty body", () => {
    expect(createMetrics().render()).toBe("");
  });

  test("the content type is the 0.0.4 text format's", () => {
    expect(createMetrics().contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
  });
});

/** A registry using every feature, including the awkward cases, for promtool to judge. */
function fullRegistry(): string {
  const m = createMetrics();
  const submitted = m.counter("jobqueue_jobs_submitted_total", "Jobs accepted by POST /submit.");
  submitted.inc(undefined, 12);
  const done = m.counter("jobqueue_jobs_completed_total", "Jobs finished, by type and outcome.", ["type", "outcome"]);
  done.inc({ type: "webhook", outcome: "done" }, 3);
  done.inc({ type: 'we"ird\\type\nx', outcome: "dead" });
  m.counter("jobqueue_fence_misses_total", "Fenced writes that did not take effect.", ["op"]);
  m.gauge("jobqueue_ready_jobs", "Jobs in the ready heap.\nSecond line with a \\ backslash.", () => 5);
  m.gauge("jobqueue_table_rows", "Rows per table.", () => [
    { labels: { table: "pending" }, value: 9 },
    { labels: { table: "inflight" }, value: -1 },
  ]);
  m.gauge("jobqueue_broken", "Throws at scrape.", () => {
    throw new Error("boom");
  });
  m.gauge("jobqueue_odd_values", "NaN and Inf.", () => [
    { labels: { v: "nan" }, value: NaN },
    { labels: { v: "inf" }, value: Infinity },
  ]);
  const latency = m.histogram("jobqueue_job_duration_seconds", "Handler run time.", LATENCY_BUCKETS_SECONDS, ["type"]);
  for (const v of [0.0005, 0.003, 0.2, 7, 400]) latency.observe(v, { type: "webhook" });
  m.histogram("jobqueue_claim_seconds", "Claim latency.", [0.01, 0.1]).observe(0.05);
  return m.render();
}

const promtool = Bun.which("promtool");

test.skipIf(promtool === null)("promtool check metrics accepts the full exposition without lint findings", () => {
  const text = fullRegistry();
  const run = Bun.spawnSync([promtool!, "check", "metrics"], { stdin: new TextEncoder().encode(text) });
  const output = run.stdout.toString() + run.stderr.toString();
  expect({ exitCode: run.exitCode, output }).toEqual({ exitCode: 0, output: "" });
});

test("the full exposition also reads back through the test parser", () => {
  const e = parse(fullRegistry());
  expect(sample(e, "jobqueue_jobs_completed_total", { type: 'we"ird\\type\nx', outcome: "dead" })).toBe(1);
  expect(sample(e, "jobqueue_table_rows", { table: "inflight" })).toBe(0);
  expect(sample(e, "jobqueue_job_duration_seconds_bucket", { type: "webhook", le: "+Inf" })).toBe(5);
  expect(sample(e, "jobqueue_job_duration_seconds_bucket", { type: "webhook", le: "300" })).toBe(4);
  expect(e.help.has("jobqueue_broken")).toBe(false);
});

describe("jobqueue_oldest_ready_age_seconds", () => {
  /** A real scheduler holding `ready` due jobs, the oldest ready at 1,000, behind the node's gauges; counts the heap visits. */
  function node(ready: number) {
    let now = 1_000_000;
    const scheduler = createScheduler({ agingMs: 1000, clock: () => now });
    for (let i = 0; i < ready; i++) scheduler.add(i + 1, 0, 1_000 + i, now, "t");
    let scans = 0;
    const q = createQueueMetrics({ clock: () => now, logger: createLogger("silent") });
    q.gauges({
      readyCount: () => scheduler.readyCount, scheduledCount: () => scheduler.scheduledCount,
      oldestReadyAt: () => (scans++, scheduler.oldestReadyAt()),
      inflight: () => 0, busy: () => 0, waitingForSlot: () => 0, workers: 1, liveNodes: () => 1, types: () => [],
      flowStatus: () => { throw new Error("no types"); }, config: () => null, pullTypes: () => [], pollsWaiting: () => 0, pulledOut: () => 0,
    });
    const age = () => parse(q.metrics.render()).samples.find((s) => s.name === "jobqueue_oldest_ready_age_seconds")!.value;
    return { scheduler, age, scans: () => scans, advance: (ms: number) => void (now += ms) };
  }

  test("with few jobs ready, every read looks at them all and sees the oldest leave at once", () => {
    const n = node(OLDEST_SCAN_EXACT_BELOW);
    expect(n.age()).toBe(999);
    n.scheduler.remove(1); // the oldest leaves (started, cancelled)
    expect(n.age()).toBe(998.999);
    expect(n.scans()).toBe(2);
  });

  test("with many ready, reads look at every job at most once per OLDEST_SCAN_EVERY_MS, the age growing meanwhile", () => {
    const n = node(OLDEST_SCAN_EXACT_BELOW + 1);
    expect(n.age()).toBe(999);
    n.advance(OLDEST_SCAN_EVERY_MS - 1);
    for (let i = 0; i < 50; i++) n.age();
    expect(n.scans()).toBe(1);
    expect(n.age()).toBe(999 + (OLDEST_SCAN_EVERY_MS - 1) / 1000);
    n.scheduler.remove(1); // the oldest leaves (started, cancelled): seen at the next look
    n.advance(1);
    expect(n.age()).toBe(999 + OLDEST_SCAN_EVERY_MS / 1000 - 0.001);
    expect(n.scans()).toBe(2);
  });
});
