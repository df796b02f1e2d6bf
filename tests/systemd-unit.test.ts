// systemd-unit.test.ts: the example systemd unit (examples/systemd/jobqueue.service) keeps its
// hardening and restart policy, gives a graceful stop more time than jobqueue's shutdown grace,
// and its environment file names only real settings. (scripts/check-systemd-unit.sh runs
// `systemd-analyze verify` on it in make release-smoke.)
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OPTIONS } from "../src/config/options.ts";

const DIR = join(import.meta.dir, "..", "examples", "systemd");

/** The unit's sections, each a list of key = value in file order (a key may repeat). */
function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = [];
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (current === undefined || eq <= 0) throw new Error(`not a key = value line in a section: ${raw}`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const unit = parseUnit(readFileSync(join(DIR, "jobqueue.service"), "utf8"));
const service = new Map(unit.get("Service") ?? []);
const envNames = new Set(Object.values(OPTIONS).map((o) => o.env));

/** systemd time spans as this unit writes them: "40", "40s", "2min", "1min 30s". */
function seconds(span: string): number {
  let total = 0;
  for (const part of span.split(/\s+/)) {
    const m = /^(\d+)(s|sec|min|m)?$/.exec(part);
    if (!m) throw new Error(`time span not understood: ${span}`);
    total += Number(m[1]) * (m[2] === "min" || m[2] === "m" ? 60 : 1);
  }
  return total;
}

test("the unit has its three sections and starts jobqueue serve after the network is up", () => {
  expect([...unit.keys()]).toEqual(["Unit", "Service", "Install"]);
  expect(service.get("ExecStart")).toBe("/usr/local/bin/jobqueue serve");
  expect(new Map(unit.get("Unit")).get("After")).toContain("network-online.target");
  expect(new Map(unit.get("Install")).get("WantedBy")).toBe("multi-user.target");
});

test("the unit runs as a dynamic user that can write only its state directory", () => {
  expect(service.get("DynamicUser")).toBe("yes");
  expect(service.get("StateDirectory")).toBe("jobqueue");
  expect(service.get("ProtectSystem")).toBe("strict");
  expect(service.get("ProtectHome")).toBe("yes");
  expect(service.get("PrivateTmp")).toBe("yes");
  expect(service.get("NoNewPrivileges")).toBe("yes");
  expect(service.get("CapabilityBoundingSet")).toBe("");
  // The embedded store is inside the state directory, the only writable place.
  const env = (unit.get("Service") ?? []).filter(([k]) => k === "Environment").map(([, v]) => v);
  expect(env).toContain("JOBQUEUE_DB=/var/lib/jobqueue/jobqueue.db");
  for (const assignment of env) expect(envNames).toContain(assignment.slice(0, assignment.indexOf("=")));
});

test("a stop lasts longer than jobqueue's default shutdown grace, so running jobs are handed back, not killed", () => {
  const graceS = Number(OPTIONS.shutdownGraceMs.default) / 1000;
  expect(graceS).toBeGreaterThan(0);
  // At least 10 s more: after the grace jobqueue still hands jobs back and flushes its writes.
  expect(seconds(service.get("TimeoutStopSec") ?? "")).toBeGreaterThanOrEqual(graceS + 10);
  expect(service.get("KillSignal") ?? "SIGTERM").toBe("SIGTERM");
  expect(service.get("KillMode")).toBe("mixed");
});

test("a crash restarts it, and a setting to fix (exit code 2) does not", () => {
  expect(service.get("Restart")).toBe("on-failure");
  expect(seconds(service.get("RestartSec") ?? "")).toBeGreaterThan(0);
  expect(service.get("RestartPreventExitStatus")).toBe("2");
});

test("settings come from an environment file that names only real settings", () => {
  expect(service.get("EnvironmentFile")).toBe("/etc/jobqueue/jobqueue.env");
  const lines = readFileSync(join(DIR, "jobqueue.env"), "utf8").split("\n");
  const named = lines.map((l) => /^#?([A-Z][A-Z0-9_]*)=/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  expect(named.length).toBeGreaterThan(3);
  // Every variable is a jobqueue setting, but for the example secret a types file's secret_env names.
  for (const name of named) if (name !== "EMAIL_HOOK_SECRET") expect(envNames).toContain(name);
});
