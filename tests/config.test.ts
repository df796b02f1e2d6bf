// config.test.ts: loadConfig precedence, parsing and errors; --help text; the job types file.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { helpText, loadConfig } from "../src/config/config.ts";
import { ConfigError } from "../src/errors.ts";
import { loadTypesFile, parseDurationMs, parseTypesConfig } from "../src/config/types-file.ts";
import { STANDARD_SECRET_RULE } from "../src/handlers/signing.ts";
import { claimRate, claimsAhead } from "../src/config/flow-policy.ts";

const HOST = "box";
/** A Standard Webhooks secret whose key is `bytes` bytes of `fill`. */
const whsec = (bytes: number, fill = 1) => `whsec_${Buffer.alloc(bytes, fill).toString("base64")}`;
/** A secret of the jobqueue-v1 form only. */
const LEGACY = "legacy-secret-0123456789";

/** The ConfigError thrown by fn (fails the test if fn throws anything else or nothing). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError, nothing was thrown");
}

describe("loadConfig", () => {
  test("with no flags and no env every option takes its default", () => {
    expect(loadConfig({}, [], HOST)).toEqual({
      command: "serve",
      config: {
        port: 8080,
        host: "127.0.0.1",
        databaseUrl: undefined,
        dbPath: "./data/jobqueue.db",
        sqliteSynchronous: "FULL",
        configPath: undefined,
        workers: 32,
        claimAheadMs: 2,
        leaseMs: 30_000,
        agingMs: 1000,
        shutdownGraceMs: 25_000,
        nodeId: "box:8080",
        logLevel: "info",
        reapIntervalMs: 2000,
        backoffBaseMs: 1000,
        backoffCapMs: 3_600_000,
        defaultTimeoutMs: 30_000,
        defaultMaxAttempts: 5,
        bodyLimitBytes: 1_048_576,
        maxQueued: 1_000_000,
        maxPendingBytes: 67_108_864,
        keepCompletedMs: 0,
        idleTimeoutS: 30,
        token: undefined,
        tokenFile: undefined,
        metricsPublic: false,
        allowedHosts: [],
        noListen: false,
        webhookSecret: undefined,
      },
    });
  });

  test("--keep-completed takes 0, a duration with a unit, or whole milliseconds, up to 365 days", () => {
    const keep = (raw: string) => loadConfig({}, ["--keep-completed", raw], HOST).config.keepCompletedMs;
    expect(keep("0")).toBe(0);
    expect(keep("90s")).toBe(90_000);
    expect(keep("24h")).toBe(86_400_000);
    expect(keep("365d")).toBe(365 * 86_400_000);
    expect(keep("1500")).toBe(1500);
    for (const bad of ["366d", "-1s", "1.5h", "soon", ""]) {
      expect(() => loadConfig({}, ["--keep-completed", bad], HOST)).toThrow("--keep-completed / JOBQUEUE_KEEP_COMPLETED");
    }
  });

  test("a flag beats its env var, which beats the default", () => {
    const env = { JOBQUEUE_WORKERS: "7", JOBQUEUE_LEASE_MS: "5000" };
    const { config } = loadConfig(env, ["--workers", "9"], HOST);
    expect(config.workers).toBe(9);
    expect(config.leaseMs).toBe(5000);
    expect(config.agingMs).toBe(1000);
  });

  test("the --flag=value form works like --flag value", () => {
    const { config } = loadConfig({}, ["--port=9000", "--database-url=postgres://u@h/db", "--log-level=debug"], HOST);
    expect(config.port).toBe(9000);
    expect(config.databaseUrl).toBe("postgres://u@h/db");
    expect(config.logLevel).toBe("debug");
  });

  test("an empty env var counts as unset", () => {
    const { config } = loadConfig({ PORT: "", DATABASE_URL: "", JOBQUEUE_WORKERS: "" }, [], HOST);
    expect(config.port).toBe(8080);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.workers).toBe(32);
  });

  test("the node id defaults to hostname:port using the chosen port", () => {
    expect(loadConfig({ PORT: "9100" }, [], HOST).config.nodeId).toBe("box:9100");
    expect(loadConfig({ JOBQUEUE_NODE_ID: "n1" }, [], HOST).config.nodeId).toBe("n1");
  });

  test("with --port 0 the default node id is unique per process, never hostname:0", () => {
    expect(loadConfig({}, ["--port", "0"], HOST, "4242.ab12").config.nodeId).toBe("box:0-4242.ab12");
    const a = loadConfig({}, ["--port", "0"], HOST).config.nodeId;
    const b = loadConfig({}, ["--port", "0"], HOST).config.nodeId;
    expect(a).toStartWith("box:0-");
    expect(a).not.toBe(b);
    expect(loadConfig({}, ["--port", "0", "--node-id", "fixed"], HOST).config.nodeId).toBe("fixed");
  });

  test("every env var name is read", () => {
    const env = {
      PORT: "0",
      HOST: "0.0.0.0",
      DATABASE_URL: "sqlite:./x.db",
      JOBQUEUE_DB: "/tmp/q.db",
      JOBQUEUE_CONFIG: "jobs.toml",
      JOBQUEUE_CLAIM_AHEAD_MS: "0",
      JOBQUEUE_WORKERS: "1",
      JOBQUEUE_LEASE_MS: "1000",
      JOBQUEUE_AGING_MS: "0",
      JOBQUEUE_SHUTDOWN_GRACE_MS: "0",
      JOBQUEUE_NODE_ID: "a",
      JOBQUEUE_LOG_LEVEL: "silent",
      JOBQUEUE_REAP_INTERVAL_MS: "100",
      JOBQUEUE_BACKOFF_BASE_MS: "10",
      JOBQUEUE_BACKOFF_CAP_MS: "10",
      JOBQUEUE_TIMEOUT_MS: "1",
      JOBQUEUE_MAX_ATTEMPTS: "100",
      JOBQUEUE_BODY_LIMIT_BYTES: "1024",
      JOBQUEUE_SQLITE_SYNCHRONOUS: "normal",
      JOBQUEUE_MAX_QUEUED: "0",
      JOBQUEUE_MAX_PENDING_BYTES: "1048576",
      JOBQUEUE_IDLE_TIMEOUT_S: "5",
      JOBQUEUE_KEEP_COMPLETED: "7d",
      JOBQUEUE_TOKEN_FILE: "/run/secrets/token",
      JOBQUEUE_METRICS_PUBLIC: "TRUE",
      JOBQUEUE_ALLOWED_HOSTS: "Jobs.Example.com, *.internal.example ,10.0.0.7,[fd00::1]",
      JOBQUEUE_NO_LISTEN: "true",
      JOBQUEUE_WEBHOOK_SECRET: "whsec_0123456789abcdef",
    };
    expect(loadConfig(env, [], HOST).config).toEqual({
      port: 0,
      host: "0.0.0.0",
      databaseUrl: "sqlite:./x.db",
      dbPath: "/tmp/q.db",
      sqliteSynchronous: "NORMAL",
      configPath: "jobs.toml",
      workers: 1,
      claimAheadMs: 0,
      leaseMs: 1000,
      agingMs: 0,
      shutdownGraceMs: 0,
      nodeId: "a",
      logLevel: "silent",
      reapIntervalMs: 100,
      backoffBaseMs: 10,
      backoffCapMs: 10,
      defaultTimeoutMs: 1,
      defaultMaxAttempts: 100,
      bodyLimitBytes: 1024,
      maxQueued: 0,
      maxPendingBytes: 1_048_576,
      keepCompletedMs: 604_800_000,
      idleTimeoutS: 5,
      token: undefined,
      tokenFile: "/run/secrets/token",
      metricsPublic: true,
      allowedHosts: ["jobs.example.com", "*.internal.example", "10.0.0.7", "[fd00::1]"],
      noListen: true,
      webhookSecret: "whsec_0123456789abcdef",
    });
    expect(loadConfig({ JOBQUEUE_TOKEN: "t0k3n-0123456789abcdef" }, [], HOST).config.token).toBe("t0k3n-0123456789abcdef");
  });

  test("the positional command selects serve or migrate", () => {
    expect(loadConfig({}, ["migrate"], HOST).command).toBe("migrate");
    expect(loadConfig({}, ["serve", "--port", "1"], HOST).command).toBe("serve");
    expect(loadConfig({}, ["--port", "1", "migrate"], HOST).command).toBe("migrate");
  });

  test("--help, -h, --version and -v win even over bad settings", () => {
    expect(loadConfig({}, ["--help"], HOST).command).toBe("help");
    expect(loadConfig({}, ["serve", "-h"], HOST).command).toBe("help");
    expect(loadConfig({ PORT: "bad" }, ["--bogus", "--version"], HOST).command).toBe("version");
    expect(loadConfig({}, ["-v"], HOST).config.port).toBe(8080);
  });

  const bad: [string, string[], string][] = [
    ["--port", ["--port", "65536"], "PORT"],
    ["--port", ["--port", "-1"], "PORT"],
    ["--host", ["--host="], "HOST"],
    ["--database-url", ["--database-url", "mysql://h/db"], "DATABASE_URL"],
    ["--db", ["--db="], "JOBQUEUE_DB"],
    ["--config", ["--config="], "JOBQUEUE_CONFIG"],
    ["--workers", ["--workers", "abc"], "JOBQUEUE_WORKERS"],
    ["--workers", ["--workers", "0"], "JOBQUEUE_WORKERS"],
    ["--workers", ["--workers", "1e3"], "JOBQUEUE_WORKERS"],
    ["--workers", ["--workers", "12abc"], "JOBQUEUE_WORKERS"],
    ["--workers", ["--workers", " 5"], "JOBQUEUE_WORKERS"],
    ["--workers", ["--workers", "2.5"], "JOBQUEUE_WORKERS"],
    ["--workers", ["--workers="], "JOBQUEUE_WORKERS"],
    ["--lease-ms", ["--lease-ms", "999"], "JOBQUEUE_LEASE_MS"],
    ["--aging-ms", ["--aging-ms", "-5"], "JOBQUEUE_AGING_MS"],
    ["--shutdown-grace-ms", ["--shutdown-grace-ms", "3600001"], "JOBQUEUE_SHUTDOWN_GRACE_MS"],
    ["--node-id", ["--node-id="], "JOBQUEUE_NODE_ID"],
    ["--node-id", ["--node-id", "x".repeat(201)], "JOBQUEUE_NODE_ID"],
    ["--log-level", ["--log-level", "verbose"], "JOBQUEUE_LOG_LEVEL"],
    ["--reap-interval-ms", ["--reap-interval-ms", "99"], "JOBQUEUE_REAP_INTERVAL_MS"],
    ["--backoff-base-ms", ["--backoff-base-ms", "0"], "JOBQUEUE_BACKOFF_BASE_MS"],
    ["--backoff-cap-ms", ["--backoff-cap-ms", "604800001"], "JOBQUEUE_BACKOFF_CAP_MS"],
    ["--backoff-cap-ms", ["--backoff-base-ms", "5000", "--backoff-cap-ms", "4999"], "JOBQUEUE_BACKOFF_CAP_MS"],
    ["--timeout-ms", ["--timeout-ms", "0"], "JOBQUEUE_TIMEOUT_MS"],
    ["--max-attempts", ["--max-attempts", "101"], "JOBQUEUE_MAX_ATTEMPTS"],
    ["--body-limit-bytes", ["--body-limit-bytes", "1023"], "JOBQUEUE_BODY_LIMIT_BYTES"],
    ["--max-queued", ["--max-queued", "-1"], "JOBQUEUE_MAX_QUEUED"],
    ["--max-queued", ["--max-queued", "1e6"], "JOBQUEUE_MAX_QUEUED"],
    ["--idle-timeout-s", ["--idle-timeout-s", "0"], "JOBQUEUE_IDLE_TIMEOUT_S"],
    ["--idle-timeout-s", ["--idle-timeout-s", "256"], "JOBQUEUE_IDLE_TIMEOUT_S"],
    ["--token", ["--token", "short"], "JOBQUEUE_TOKEN"],
    ["--token", ["--token", "has space in it 0123456789"], "JOBQUEUE_TOKEN"],
    ["--token-file", ["--token-file="], "JOBQUEUE_TOKEN_FILE"],
    ["--metrics-public", ["--metrics-public=yes"], "JOBQUEUE_METRICS_PUBLIC"],
    ["--webhook-secret", ["--webhook-secret", "tooshort"], "JOBQUEUE_WEBHOOK_SECRET"],
  ];
  for (const [flag, argv, envName] of bad) {
    test(`${argv.join(" ")} is rejected with a one-line message naming ${flag} and ${envName}`, () => {
      const err = configError(() => loadConfig({}, argv, HOST));
      expect(err.message).toStartWith(`invalid ${flag} / ${envName} `);
      expect(err.message).toContain(": expected ");
      expect(err.message).not.toContain("\n");
    });
  }

  test("a bad env value is reported with the flag, env name, value and accepted range", () => {
    expect(configError(() => loadConfig({ JOBQUEUE_WORKERS: "abc" }, [], HOST)).message).toBe(
      'invalid --workers / JOBQUEUE_WORKERS "abc": expected an integer from 1 to 10000',
    );
  });

  test("a base backoff above the default cap is reported against the cap", () => {
    const err = configError(() => loadConfig({ JOBQUEUE_BACKOFF_BASE_MS: "7200000" }, [], HOST));
    expect(err.message).toContain("--backoff-cap-ms");
    expect(err.message).toContain("(the default)");
  });

  test("a bad database URL is shown by its scheme only, so no password reaches the message", () => {
    const err = configError(() => loadConfig({ DATABASE_URL: "mysql://me:hunter2@h/db" }, [], HOST));
    expect(err.message).toStartWith('invalid --database-url / DATABASE_URL "mysql:…": expected a URL starting with');
    expect(configError(() => loadConfig({ DATABASE_URL: "pg:me:hunter2" }, [], HOST)).message).not.toContain("hunter2");
  });

  test("a bad token or webhook secret is never shown in the message, not even in part", () => {
    for (const [env, value] of [
      ["JOBQUEUE_TOKEN", "hunter2:hunter2 hunter2"],
      ["JOBQUEUE_TOKEN", "hunter2"],
      ["JOBQUEUE_WEBHOOK_SECRET", "hunter2 hunter2 hunter2"],
      ["JOBQUEUE_WEBHOOK_SECRET", "hunter2"],
    ] as const) {
      const message = configError(() => loadConfig({ [env]: value }, [], HOST)).message;
      expect(message).toContain(env);
      expect(message).not.toContain("hunter2");
    }
    const fromFlag = configError(() => loadConfig({}, ["--token=hunter2"], HOST)).message;
    expect(fromFlag).toStartWith('invalid --token / JOBQUEUE_TOKEN "…": expected 16 to 4096 characters');
  });

  test("a token and a token file together are refused", () => {
    const err = configError(() => loadConfig({ JOBQUEUE_TOKEN: "0123456789abcdef0123" }, ["--token-file", "/t"], HOST));
    expect(err.message).toBe("--token / JOBQUEUE_TOKEN and --token-file / JOBQUEUE_TOKEN_FILE are both set: give only one");
    expect(err.message).not.toContain("0123456789abcdef0123");
  });

  test("a token of base64, base64url or hex characters is accepted", () => {
    for (const token of ["dGhpcyBpcyBhIHRva2VuIQ==", "a-b_c.d~e+f/g0123456789", "0123456789abcdef0123456789abcdef"]) {
      expect(loadConfig({}, ["--token", token], HOST).config.token).toBe(token);
    }
  });

  test("--metrics-public is a switch: bare means true, and it also takes true or false", () => {
    expect(loadConfig({}, ["--metrics-public"], HOST).config.metricsPublic).toBe(true);
    expect(loadConfig({}, ["--metrics-public", "--port", "1"], HOST).config.metricsPublic).toBe(true);
    expect(loadConfig({}, ["--metrics-public", "serve"], HOST)).toMatchObject({ command: "serve", config: { metricsPublic: true } });
    expect(loadConfig({}, ["--metrics-public", "false"], HOST).config.metricsPublic).toBe(false);
    expect(loadConfig({ JOBQUEUE_METRICS_PUBLIC: "true" }, ["--metrics-public=false"], HOST).config.metricsPublic).toBe(false);
    expect(loadConfig({ JOBQUEUE_METRICS_PUBLIC: "false" }, [], HOST).config.metricsPublic).toBe(false);
    expect(loadConfig({}, ["--no-listen"], HOST).config.noListen).toBe(true);
    expect(loadConfig({ JOBQUEUE_NO_LISTEN: "true" }, [], HOST).config.noListen).toBe(true);
  });

  test("an unknown flag is rejected", () => {
    expect(configError(() => loadConfig({}, ["--prot", "80"], HOST)).message).toContain('"--prot"');
    expect(configError(() => loadConfig({}, ["-x"], HOST)).message).toContain('"-x"');
  });

  test("an unknown or second positional argument is rejected", () => {
    expect(configError(() => loadConfig({}, ["start"], HOST)).message).toContain('"start"');
    expect(configError(() => loadConfig({}, ["serve", "migrate"], HOST)).message).toContain('"migrate"');
  });

  test("--allowed-hosts takes host names, *.suffix patterns and addresses, and names a bad entry", () => {
    const hosts = (raw: string) => loadConfig({}, ["--allowed-hosts", raw], HOST).config.allowedHosts;
    expect(hosts("jobs.example.com")).toEqual(["jobs.example.com"]);
    expect(hosts(" a.b , *.C.d,,")).toEqual(["a.b", "*.c.d"]);
    for (const bad of ["http://a.b", "a.b:8080", "*", "*.", "a..b", "a b", "*.*.b", "a/b", "-a.b", "[not-v6]"]) {
      const message = configError(() => loadConfig({}, ["--allowed-hosts", `ok.example,${bad}`], HOST)).message;
      expect(message).toContain("--allowed-hosts / JOBQUEUE_ALLOWED_HOSTS");
      expect(message).toContain(JSON.stringify(bad.trim()));
    }
  });

  test("a flag without a value is rejected", () => {
    expect(configError(() => loadConfig({}, ["--port"], HOST)).message).toContain("--port");
    expect(configError(() => loadConfig({}, ["--db", "--port", "1"], HOST)).message).toContain("--db");
  });

  test("the help text lists every flag and env var", () => {
    const text = helpText();
    const flags = [
      "--port", "--host", "--database-url", "--db", "--config", "--workers", "--lease-ms", "--aging-ms",
      "--shutdown-grace-ms", "--node-id", "--log-level", "--reap-interval-ms", "--backoff-base-ms",
      "--backoff-cap-ms", "--timeout-ms", "--max-attempts", "--body-limit-bytes", "--max-queued",
      "--idle-timeout-s", "--token", "--token-file", "--metrics-public", "--allowed-hosts", "--webhook-secret", "--help", "--version",
    ];
    const envs = [
      "PORT", "HOST", "DATABASE_URL", "JOBQUEUE_DB", "JOBQUEUE_CONFIG", "JOBQUEUE_WORKERS", "JOBQUEUE_LEASE_MS",
      "JOBQUEUE_AGING_MS", "JOBQUEUE_SHUTDOWN_GRACE_MS", "JOBQUEUE_NODE_ID", "JOBQUEUE_LOG_LEVEL",
      "JOBQUEUE_REAP_INTERVAL_MS", "JOBQUEUE_BACKOFF_BASE_MS", "JOBQUEUE_BACKOFF_CAP_MS", "JOBQUEUE_TIMEOUT_MS",
      "JOBQUEUE_MAX_ATTEMPTS", "JOBQUEUE_BODY_LIMIT_BYTES", "JOBQUEUE_MAX_QUEUED", "JOBQUEUE_IDLE_TIMEOUT_S",
      "JOBQUEUE_TOKEN", "JOBQUEUE_TOKEN_FILE", "JOBQUEUE_METRICS_PUBLIC", "JOBQUEUE_ALLOWED_HOSTS", "JOBQUEUE_WEBHOOK_SECRET",
    ];
    for (const name of [...flags, ...envs]) expect(text).toMatch(new RegExp(`(^|\\s)${name}\\s`, "m"));
    expect(text).toContain("default 8080");
    expect(text).toContain("default <hostname>:<port>");
  });
});

describe("parseDurationMs", () => {
  test("reads ms, s, m and h and whole numbers of ms", () => {
    expect(parseDurationMs("250ms")).toBe(250);
    expect(parseDurationMs("30s")).toBe(30_000);
    expect(parseDurationMs("5m")).toBe(300_000);
    expect(parseDurationMs("1h")).toBe(3_600_000);
    expect(parseDurationMs(1500)).toBe(1500);
  });

  test("rejects anything else", () => {
    for (const bad of ["", "30", "30x", "1.5s", "-1s", " 30s", "1h30m", "s"]) {
      expect(() => parseDurationMs(bad)).toThrow(ConfigError);
    }
    for (const bad of [1.5, -1, Number.NaN, Infinity]) expect(() => parseDurationMs(bad)).toThrow(ConfigError);
  });
});

describe("the job types file", () => {
  const defaults = { timeoutMs: 30_000, maxAttempts: 5 };

  test("a TOML file gives a webhook and a noop type, with defaults filled in", () => {
    const types = parseTypesConfig(
      `
[types.email]
url = "https://hooks.example/email"
timeout = "5s"
max_attempts = 3
headers = { Authorization = "Bearer t" }

[types."report.daily"]
builtin = "noop"
`,
      "toml",
      defaults,
    );
    expect([...types.entries()]).toEqual([
      ["email", { kind: "webhook", url: "https://hooks.example/email", timeoutMs: 5000, maxAttempts: 3, headers: { Authorization: "Bearer t" } }],
      ["report.daily", { kind: "noop", timeoutMs: 30_000, maxAttempts: 5 }],
    ]);
  });

  test("a JSON file of the same shape gives the same types", () => {
    const types = parseTypesConfig(
      JSON.stringify({ types: { email: { url: "http://127.0.0.1:9000/e", timeout: 250 }, n: { builtin: "noop" } } }),
      "json",
      defaults,
    );
    expect(types.get("email")).toEqual({ kind: "webhook", url: "http://127.0.0.1:9000/e", timeoutMs: 250, maxAttempts: 5, headers: {} });
    expect(types.get("n")).toEqual({ kind: "noop", timeoutMs: 30_000, maxAttempts: 5 });
  });

  test("priority, concurrency and backoff are read per type, and only set when given", () => {
    const types = parseTypesConfig(
      `
[types.resize]
builtin = "noop"
priority = 70
concurrency = 4
backoff = { base = "2s", cap = "10m" }

[types.half]
builtin = "noop"
backoff = { cap = "30s" }
`,
      "toml",
      defaults,
    );
    expect(types.get("resize")).toEqual({
      kind: "noop", timeoutMs: 30_000, maxAttempts: 5, priority: 70, concurrency: 4, backoff: { baseMs: 2000, capMs: 600_000 },
    });
    expect(types.get("half")).toEqual({ kind: "noop", timeoutMs: 30_000, maxAttempts: 5, backoff: { capMs: 30_000 } });
    expect(Object.keys(types.get("half")!)).not.toContain("priority");
  });

  test("flow control is read per type: a rate as text or a table, per-key limits, pushback and breaker settings", () => {
    const types = parseTypesConfig(
      `
[types.api]
url = "http://127.0.0.1:9/api"
rate = { limit = 100, per = "1m", burst = 20 }
key_concurrency = 2
key_rate = "10/s"
max_throttles = 5
breaker = { failures = 3, cool = "10s" }

[types.plain]
builtin = "noop"
rate = "50/s"

[types.defaults]
url = "http://127.0.0.1:9/d"
breaker = {}
`,
      "toml",
      defaults,
    );
    expect(types.get("api")!.flow).toEqual({
      rate: { limit: 100, perMs: 60_000, burst: 20 }, keyConcurrency: 2, keyRate: { limit: 10, perMs: 1000, burst: 1 },
      maxThrottles: 5, breaker: { failures: 3, coolMs: 10_000 },
    });
    expect(types.get("plain")!.flow).toEqual({ rate: { limit: 50, perMs: 1000, burst: 1 } });
    expect(types.get("defaults")!.flow).toEqual({ breaker: { failures: 10, coolMs: 30_000 } });
  });

  test("a type rate whose burst holds ten times the starts of 100 ms is claimed ahead, its claims weighing that burst less those starts", () => {
    const rate = (limit: number, perMs: number, burst: number) => ({ rate: { limit, perMs, burst } });
    // A cap far above the load: 1,000,000 a second, as many back to back.
    expect(claimsAhead(rate(1_000_000, 1000, 1_000_000))).toBe(true);
    expect(claimRate(rate(1_000_000, 1000, 1_000_000))!.burst).toBe(900_000);
    expect(claimsAhead(rate(1000, 1000, 1000))).toBe(true);
    expect(claimRate(rate(1000, 1000, 1000))).toEqual({ limit: 1000, perMs: 1000, burst: 900 });
    // One start short of that, a strict spacing, a slow rate with no burst, and any per-key limit: claimed only for free workers, as configured.
    for (const flow of [rate(1000, 1000, 999), rate(1000, 1000, 1), rate(1, 3_600_000, 1), rate(10, 1000, 9),
      { ...rate(1000, 1000, 1000), keyConcurrency: 1 }, { ...rate(1000, 1000, 1000), keyRate: { limit: 1, perMs: 1000, burst: 1 } }]) {
      expect(claimsAhead(flow)).toBe(false);
      expect(claimRate(flow)).toEqual(flow.rate);
    }
    expect(claimsAhead(rate(10, 1000, 10))).toBe(true); // one start in 100 ms, ten back to back
    expect(claimRate(rate(10, 1000, 10))!.burst).toBe(9);
    // Slower than a start per 100 ms: nothing to gain, whatever the burst.
    expect(claimsAhead(rate(1, 3_600_000, 100))).toBe(false);
    expect(claimsAhead(rate(9, 1000, 100))).toBe(false);
    expect(claimsAhead(rate(15, 1000, 19))).toBe(false);
    expect(claimRate(rate(15, 1000, 20))!.burst).toBe(18);
    expect(claimsAhead({})).toBe(false);
  });

  test("bad flow-control settings are refused with the key named", () => {
    const bad: [string, string][] = [
      ['rate = "100 per minute"', "types.t.rate: expected a rate like"],
      ['rate = "0/s"', "types.t.rate: expected a rate like"],
      ['rate = { limit = 10, per = "0s" }', "types.t.rate.per: expected a duration from 1ms to 24h"],
      ['rate = { limit = 10, per = "1s", burst = 0 }', "types.t.rate.burst: expected an integer from 1 to 1000000"],
      ['rate = { limit = 10, per = "1s", extra = 1 }', "types.t.rate.extra: unknown key"],
      ["key_concurrency = 0", "types.t.key_concurrency: expected an integer from 1 to 10000"],
      ["max_throttles = -1", "types.t.max_throttles: expected an integer from 0 to 1000"],
      ['breaker = { failures = 0 }', "types.t.breaker.failures: expected an integer from 1 to 10000"],
    ];
    for (const [line, message] of bad) {
      expect(() => parseTypesConfig(`[types.t]\nurl = "http://a/"\n${line}`, "toml", defaults)).toThrow(message);
    }
    expect(() => parseTypesConfig(`[types.t]\nbuiltin = "noop"\nbreaker = {}`, "toml", defaults))
      .toThrow("types.t.breaker: only allowed with url");
  });

  const errors: [string, string, string][] = [
    ["neither url nor builtin", `[types.email]\ntimeout = "1s"`, "types.email: expected exactly one of url, builtin, command or pull"],
    ["both url and builtin", `[types.email]\nurl = "http://a/"\nbuiltin = "noop"`, "types.email: expected exactly one of url, builtin, command or pull"],
    ["a non-http url", `[types.email]\nurl = "ftp://a/"`, "types.email.url: expected an http:// or https:// URL"],
    ["an unparseable url", `[types.email]\nurl = "not a url"`, "types.email.url: expected an http:// or https:// URL"],
    ["an unknown builtin", `[types.email]\nbuiltin = "sleep"`, "types.email.builtin: expected \"noop\""],
    ["a bad timeout", `[types.email]\nurl = "http://a/"\ntimeout = "30x"`, 'types.email.timeout: expected a duration like "30s"'],
    ["a zero timeout", `[types.email]\nurl = "http://a/"\ntimeout = 0`, "types.email.timeout: expected a duration from 1ms to 24h"],
    ["a timeout over a day", `[types.email]\nurl = "http://a/"\ntimeout = "25h"`, "types.email.timeout: expected a duration from 1ms to 24h"],
    ["max_attempts of 0", `[types.email]\nurl = "http://a/"\nmax_attempts = 0`, "types.email.max_attempts: expected an integer from 1 to 100"],
    ["max_attempts of 101", `[types.email]\nurl = "http://a/"\nmax_attempts = 101`, "types.email.max_attempts: expected an integer from 1 to 100"],
    ["fractional max_attempts", `[types.email]\nurl = "http://a/"\nmax_attempts = 2.5`, "types.email.max_attempts: expected an integer from 1 to 100"],
    ["an unknown key in a type", `[types.email]\nurl = "http://a/"\nretries = 3`, "types.email.retries: unknown key"],
    ["an unknown top-level key", `workers = 3\n[types.email]\nurl = "http://a/"`, "workers: unknown key"],
    ["a bad type name", `[types."bad name"]\nbuiltin = "noop"`, 'types."bad name": expected a type name'],
    ["a bad header name", `[types.email]\nurl = "http://a/"\nheaders = { "a b" = "x" }`, 'types.email.headers."a b": expected an HTTP header name'],
    ["a header value with a line break", `[types.email]\nurl = "http://a/"\nheaders = { a = "x\\ny" }`, "types.email.headers.a: expected a header value"],
    ["headers on a builtin", `[types.n]\nbuiltin = "noop"\nheaders = { a = "x" }`, "types.n.headers: only allowed with url"],
    ["a header the webhook sets itself", `[types.email]\nurl = "http://a/"\nheaders = { "X-Jobqueue-Signature" = "x" }`, 'types.email.headers.X-Jobqueue-Signature: is set by the webhook itself'],
    ["a webhook-id header", `[types.email]\nurl = "http://a/"\nheaders = { "Webhook-Id" = "x" }`, "types.email.headers.Webhook-Id: is set by the webhook itself"],
    ["a webhook-timestamp header", `[types.email]\nurl = "http://a/"\nheaders = { "webhook-timestamp" = "1" }`, "types.email.headers.webhook-timestamp: is set by the webhook itself"],
    ["a webhook-signature header", `[types.email]\nurl = "http://a/"\nheaders = { "WEBHOOK-SIGNATURE" = "v1,x" }`, "types.email.headers.WEBHOOK-SIGNATURE: is set by the webhook itself"],
    ["a secret without whsec_", `[types.email]\nurl = "http://a/"\nsecret = "${LEGACY}"`, `types.email.secret: expected ${STANDARD_SECRET_RULE}; a secret of any other form signs only with signature = "jobqueue-v1"`],
    ["a whsec_ secret that is not base64", `[types.email]\nurl = "http://a/"\nsecret = "whsec_not-base64_0123456789abcdefghijkl"`, "types.email.secret: expected whsec_ followed by the base64 of 24 to 64 random bytes (e.g. \"whsec_$(openssl rand -base64 32)\"): the part after whsec_ is not standard base64"],
    ["a whsec_ secret without its base64 padding", `[types.email]\nurl = "http://a/"\nsecret = "${whsec(32).replace(/=+$/, "")}"`, "the part after whsec_ is not standard base64"],
    ["a whsec_ secret in base64url", `[types.email]\nurl = "http://a/"\nsecret = "${whsec(30, 0xfb).replaceAll("+", "-").replaceAll("/", "_")}"`, "the part after whsec_ is not standard base64"],
    ["a whsec_ secret of 23 bytes", `[types.email]\nurl = "http://a/"\nsecret = "${whsec(23)}"`, "types.email.secret: expected whsec_ followed by the base64 of 24 to 64 random bytes"],
    ["a whsec_ secret of 65 bytes", `[types.email]\nurl = "http://a/"\nsecret = "${whsec(65)}"`, "types.email.secret: expected whsec_ followed by the base64 of 24 to 64 random bytes"],
    ["a short jobqueue-v1 secret", `[types.email]\nurl = "http://a/"\nsignature = "jobqueue-v1"\nsecret = "hunter2"`, "types.email.secret: expected 16 to 4096 printable ASCII characters"],
    ["a jobqueue-v1 secret with a space", `[types.email]\nurl = "http://a/"\nsignature = "jobqueue-v1"\nsecret = "hunter2 hunter2 hunter2"`, "types.email.secret: expected 16 to 4096"],
    ["a secret that is not a string", `[types.email]\nurl = "http://a/"\nsecret = 12345678`, "types.email.secret: expected a string"],
    ["a secret on a builtin", `[types.n]\nbuiltin = "noop"\nsecret = "${whsec(32)}"`, "types.n.secret: only allowed with url"],
    ["an unknown signature scheme", `[types.email]\nurl = "http://a/"\nsignature = "stripe"`, 'types.email.signature: expected "standard" (the Standard Webhooks headers) or "jobqueue-v1" (the x-jobqueue-signature header)'],
    ["a signature on a builtin", `[types.n]\nbuiltin = "noop"\nsignature = "standard"`, "types.n.signature: only allowed with url"],
    ["secret and secret_env together", `[types.email]\nurl = "http://a/"\nsecret = "0123456789abcdef"\nsecret_env = "S"`, "types.email.secret_env: give secret or secret_env, not both"],
    ["a bad secret_env name", `[types.email]\nurl = "http://a/"\nsecret_env = "A-B"`, "types.email.secret_env: expected the name of an environment variable"],
    ["secret_env naming an unset variable", `[types.email]\nurl = "http://a/"\nsecret_env = "NOT_SET_ANYWHERE"`, "types.email.secret_env: environment variable NOT_SET_ANYWHERE is not set"],
    ["no types at all", ``, "types: expected a table of job types"],
    ["an empty types table", `[types]`, "types: expected at least one job type"],
    ["broken TOML", `[types.email\nurl = `, "jobs.toml: not valid TOML"],
    ["a priority over 100", `[types.n]\nbuiltin = "noop"\npriority = 101`, "types.n.priority: expected an integer from 0 to 100"],
    ["a fractional priority", `[types.n]\nbuiltin = "noop"\npriority = 1.5`, "types.n.priority: expected an integer from 0 to 100"],
    ["a concurrency of 0", `[types.n]\nbuiltin = "noop"\nconcurrency = 0`, "types.n.concurrency: expected an integer from 1 to 10000"],
    ["a bad backoff duration", `[types.n]\nbuiltin = "noop"\nbackoff = { base = "soon" }`, 'types.n.backoff.base: expected a duration like "1s"'],
    ["a backoff cap over a week", `[types.n]\nbuiltin = "noop"\nbackoff = { cap = "169h" }`, "types.n.backoff.cap: expected a duration from 1ms to 168h"],
    ["a backoff base above its cap", `[types.n]\nbuiltin = "noop"\nbackoff = { base = "2h", cap = "1h" }`, "types.n.backoff.base: base must not be above cap"],
    ["an unknown backoff key", `[types.n]\nbuiltin = "noop"\nbackoff = { jitter = true }`, "types.n.backoff.jitter: unknown key"],
    ["a backoff that is not a table", `[types.n]\nbuiltin = "noop"\nbackoff = "1s"`, "types.n.backoff: expected a table like"],
  ];
  for (const [what, text, expected] of errors) {
    test(`${what} is rejected with the file and key path in one line`, () => {
      const err = configError(() => parseTypesConfig(text, "toml", defaults, "jobs.toml"));
      expect(err.message).toStartWith("jobs.toml: ");
      expect(err.message).toContain(expected);
      expect(err.message).not.toContain("\n");
    });
  }

  test("no error about a secret, a header or a TOML or JSON syntax error ever shows the secret", () => {
    const cases: [string, "toml" | "json"][] = [
      [`[types.email]\nurl = "http://a/"\nsecret = "hunter2"`, "toml"],
      [`[types.email]\nurl = "http://a/"\nsecret = "hunter2hunter2hunter2"`, "toml"],
      [`[types.email]\nurl = "http://a/"\nsecret = "whsec_hunter2hunter2hunter2"`, "toml"],
      [`[types.email]\nurl = "http://a/"\nsignature = "jobqueue-v1"\nsecret = "hunter2"`, "toml"],
      [`[types.email]\nurl = "http://a/"\nsecret = "hunter2hunter2hunter2`, "toml"],
      [`[types.email]\nurl = "http://a/"\nsecret = hunter2hunter2hunter2`, "toml"],
      [`[types.email]\nurl = "http://a/"\nheaders = { Authorization = hunter2hunter2 }`, "toml"],
      [`{"types":{"email":{"url":"http://a/","secret": hunter2hunter2hunter2}}}`, "json"],
      [`{"types":{"email":{"url":"http://a/","secret": "hunter2hunter2hunter2\u0001"}}}`, "json"],
    ];
    for (const [text, format] of cases) {
      const message = configError(() => parseTypesConfig(text, format, defaults, "jobs")).message;
      expect(message).toStartWith("jobs: ");
      expect(message).not.toContain("hunter2");
    }
    const env = { HOOK_SECRET: "hunter2" };
    const legacy = `[types.email]\nurl = "http://a/"\nsignature = "jobqueue-v1"\nsecret_env = "HOOK_SECRET"`;
    const message = configError(() => parseTypesConfig(legacy, "toml", defaults, "jobs", env)).message;
    expect(message).toBe("jobs: types.email.secret_env: environment variable HOOK_SECRET: expected 16 to 4096 printable ASCII characters without spaces");
    // A secret of the old form in the variable of a type that signs the standard way.
    const standard = `[types.email]\nurl = "http://a/"\nsecret_env = "HOOK_SECRET"`;
    const old = configError(() => parseTypesConfig(standard, "toml", defaults, "jobs", { HOOK_SECRET: "hunter2hunter2hunter2" })).message;
    expect(old).toStartWith(`jobs: types.email.secret_env: environment variable HOOK_SECRET: expected ${STANDARD_SECRET_RULE}; a secret of any other form`);
    expect(old).not.toContain("hunter2");
  });

  test("a webhook's secret comes from the file or from the environment variable secret_env names", () => {
    const text = `
[types.a]
url = "http://a/"
secret = "${whsec(32, 1)}"

[types.b]
url = "http://b/"
secret_env = "B_SECRET"

[types.c]
url = "http://c/"
`;
    const types = parseTypesConfig(text, "toml", defaults, "jobs", { B_SECRET: whsec(32, 2) });
    expect(types.get("a")).toEqual({ kind: "webhook", url: "http://a/", timeoutMs: 30_000, maxAttempts: 5, headers: {}, secret: whsec(32, 1) });
    expect(types.get("b")).toMatchObject({ kind: "webhook", secret: whsec(32, 2) });
    expect(types.get("c")).not.toHaveProperty("secret");
  });

  test("a whsec_ secret of 24 to 64 bytes signs the standard way; signature = \"jobqueue-v1\" takes any long enough line", () => {
    const text = `
[types.short]
url = "http://a/"
secret = "${whsec(24)}"

[types.long]
url = "http://a/"
signature = "standard"
secret = "${whsec(64, 0xff)}"

[types.old]
url = "http://a/"
signature = "jobqueue-v1"
secret_env = "OLD_SECRET"

[types.old_whsec]
url = "http://a/"
signature = "jobqueue-v1"
secret = "whsec_test_0123456789abcdef"
`;
    const types = parseTypesConfig(text, "toml", defaults, "jobs", { OLD_SECRET: LEGACY });
    expect(types.get("short")).toMatchObject({ secret: whsec(24) });
    expect(types.get("short")).not.toHaveProperty("signature");
    expect(types.get("long")).toMatchObject({ secret: whsec(64, 0xff), signature: "standard" });
    expect(types.get("old")).toMatchObject({ secret: LEGACY, signature: "jobqueue-v1" });
    expect(types.get("old_whsec")).toMatchObject({ secret: "whsec_test_0123456789abcdef", signature: "jobqueue-v1" });
  });

  test("a JSON error names the key path too", () => {
    const err = configError(() => parseTypesConfig(`{"types": {"e": {"url": "http://a/", "max_attempts": "3"}}}`, "json", defaults, "jobs.json"));
    expect(err.message).toBe("jobs.json: types.e.max_attempts: expected an integer from 1 to 100");
  });

  describe("loadTypesFile", () => {
    const dir = mkdtemp(join(tmpdir(), "jobqueue-config-"));
    afterAll(async () => rm(await dir, { recursive: true, force: true }));

    test("reads a real .toml file", async () => {
      const path = join(await dir, "jobs.toml");
      await writeFile(path, `[types.noop]\nbuiltin = "noop"\nmax_attempts = 2\n`);
      expect(await loadTypesFile(path, defaults)).toEqual(new Map([["noop", { kind: "noop", timeoutMs: 30_000, maxAttempts: 2 }]]));
    });

    test("reads a real .json file and names it in errors", async () => {
      const path = join(await dir, "jobs.json");
      await writeFile(path, `{"types": {"w": {"url": "gopher://x"}}}`);
      const err = await loadTypesFile(path, defaults).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toBe(`${path}: types.w.url: expected an http:// or https:// URL`);
    });

    test("rejects an unknown extension", async () => {
      const path = join(await dir, "jobs.yaml");
      await writeFile(path, "types: {}\n");
      const err = await loadTypesFile(path, defaults).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain(`${path}: unsupported file type ".yaml"`);
    });

    test("reports a missing file as a ConfigError naming it", async () => {
      const path = join(await dir, "missing.toml");
      const err = await loadTypesFile(path, defaults).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain(path);
    });

    test("accepts the shipped example", async () => {
      const types = await loadTypesFile(join(import.meta.dir, "../examples/jobqueue.toml"), defaults);
      expect(types.get("noop")?.kind).toBe("noop");
      expect(types.get("webhook")).toMatchObject({ kind: "webhook", url: "http://127.0.0.1:9000/hooks/webhook" });
    });
  });
});
