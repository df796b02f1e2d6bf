// dashboard.test.ts: GET /ui in a real headless Chromium against a real server behind the token
// gate: the counts render and follow submits; the dead-letter buttons work, one job at a time and a
// whole type at a time (the confirmation names the count); a type's Pause and Resume buttons hold and
// release its jobs; the types table shows policy, concurrency and breaker, and the schedules their
// next run; the jobs browser lists by state and type and pages; a job's page shows its payload
// pretty-printed (folded when large) and cancels or retries it; the charts are full from the server's
// history as soon as the page loads; and neither 1,280 nor 390 px wide scrolls sideways.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { PermanentError } from "../src/errors.ts";
import type { Handler } from "../src/handlers/handler.ts";
import { startTestServer, type TestServer } from "./support/test-server.ts";
import { waitFor } from "./support/wait.ts";

const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "dashboard-test-token-0123456789";

/** A job whose payload says `fail` dies on its first run (with `error`, if given) and completes once retried. */
function failOnceHandler(): Handler {
  const failed = new Set<number>();
  return (job) => {
    const payload = job.payload as { fail?: boolean; error?: string } | null;
    if (payload?.fail && !failed.has(job.id)) {
      failed.add(job.id);
      throw new PermanentError(payload.error ?? "the payload asked to fail");
    }
  };
}

describe.skipIf(!existsSync(CHROMIUM))("the dashboard in a browser", () => {
  let node: TestServer;
  let browser: Browser;
  let page: Page;

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(node.server.url + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { "content-type": "application/json" }) },
      ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === "" ? null : JSON.parse(text) };
  };
  const submit = async (job: Record<string, unknown> | string) => {
    const res = await api("POST", "/submit", job);
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const submitMany = async (jobs: Record<string, unknown>[]) => {
    const ids: string[] = [];
    for (let i = 0; i < jobs.length; i += 1000) {
      const res = await api("POST", "/submit", { jobs: jobs.slice(i, i + 1000) });
      expect(res.status).toBe(202);
      ids.push(...(res.body.ids as string[]));
    }
    return ids;
  };
  const deadOf = async (type: string): Promise<number> => (await api("GET", "/stats")).body.types[type]?.dead ?? 0;
  // Browser-side conditions are passed as source text: this project's TypeScript has no DOM types.
  const textOf = (selector: string) => `document.querySelector(${JSON.stringify(selector)})?.textContent`;
  const textIs = (selector: string, value: string) => page.waitForFunction(`${textOf(selector)} === ${JSON.stringify(value)}`);
  const rowIds = (table: string) => page.$$eval(`${table} tbody tr[data-id]`, (rows) => rows.map((r) => (r as unknown as { dataset: { id: string } }).dataset.id));
  /** The page's own hash navigation, as a click on a job's link does it. */
  const openJob = async (id: string) => {
    await page.evaluate(`location.hash = "#/jobs/${id}"`);
    await textIs("#job-id", id);
  };
  const backToDashboard = async () => {
    await page.click("#job-back");
    await page.waitForSelector("#view-dashboard", { state: "visible" });
  };
  /** Accepts (or dismisses) the next confirmation, handing back its text. */
  const nextDialog = (accept: boolean) => new Promise<string>((resolve) => {
    page.once("dialog", (d) => {
      resolve(d.message());
      void (accept ? d.accept() : d.dismiss());
    });
  });
  /** Whether the page is wider than its window (it would scroll sideways). */
  const overflowsSideways = () => page.evaluate(`document.documentElement.scrollWidth > window.innerWidth || document.body.scrollWidth > window.innerWidth`);

  beforeAll(async () => {
    const failOnce = failOnceHandler();
    node = await startTestServer({
      args: ["--token", TOKEN, "--keep-completed", "10m", "--workers", "2"],
      handler: failOnce,
      handlers: {
        "email.send": {
          handler: failOnce,
          policy: { concurrency: 2, flow: { rate: { limit: 50, perMs: 1000, burst: 10 }, breaker: { failures: 10, coolMs: 30_000 } } },
        },
        "thumbnail.resize": { handler: failOnce, policy: { priority: 40, timeoutMs: 120_000 } },
        "report.build": { handler: failOnce, policy: { maxAttempts: 2 } },
      },
      // Mondays at 03:00 in Berlin, never caught up: no tick lands in this test's counts.
      schedules: [{ name: "weekly-digest", type: "report.build", cron: "0 3 * * 1", timezone: "Europe/Berlin", payload: '{"week":"last"}', catchUp: "none" }],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  });

  afterAll(async () => {
    await browser?.close();
    await node?.stop();
  });

  test("the page loads without the token but shows no data until one is entered", async () => {
    const res = await fetch(`${node.server.url}/ui`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect((await fetch(`${node.server.url}/stats`)).status).toBe(401);
    expect((await fetch(`${node.server.url}/jobs?state=pending`)).status).toBe(401);
    expect((await fetch(`${node.server.url}/stats/history`)).status).toBe(401);

    await page.goto(`${node.server.url}/ui`);
    await page.waitForFunction(`${textOf("#status")}?.startsWith("unauthorized")`);
    expect(await page.textContent("#count-pending")).toBe("–");

    await page.fill("#token", TOKEN);
    await page.click("#token-form button");
    await textIs("#count-pending", "0");
    await textIs("#count-dead", "0");
    expect(await page.evaluate(() => sessionStorage.getItem("jobqueue.token"))).toBe(TOKEN);
  });

  test("the counts follow jobs submitted over HTTP", async () => {
    for (let i = 0; i < 3; i++) await submit({ type: "noop", delayMs: 600_000 });
    await textIs("#count-scheduled", "3");
    await page.waitForSelector('#types tr[data-type="noop"]');

    await submit({ type: "noop" });
    await page.waitForFunction(`Number(${textOf("#completed")}) >= 1`);
    await page.waitForFunction(`/^\\d+ \\/ 2$/.test(${textOf("#busy")} ?? "")`);
    // The wait tile has a reading: the mean wait of the last second with starts, or "idle" when none started.
    await page.waitForFunction(`/^([0-9.,]+ (ms|s)|idle)$/.test(${textOf("#wait")} ?? "")`);
  });

  test("a dead job is listed newest first, opens on its own page, and its Retry button sends it back to run", async () => {
    const id = await submit({ type: "noop", payload: { fail: true } });
    const row = page.locator(`#dead tr[data-id="${id}"]`);
    await row.waitFor();
    await textIs("#count-dead", "1");
    expect(await row.textContent()).toContain("the payload asked to fail");

    await page.fill("#lookup-id", id);
    await page.click("#lookup-form button");
    await textIs("#job-state", "dead");
    expect(await page.textContent("#job-attempts")).toBe("1/5");
    expect(await page.textContent("#job-error")).toContain("the payload asked to fail");
    expect(await page.isVisible("#job-retry")).toBe(true);
    expect(await page.isVisible("#job-cancel")).toBe(false);
    await backToDashboard();

    await row.locator("button.retry").click();
    await row.waitFor({ state: "detached" });
    const state = await waitFor(async () => {
      const res = await api("GET", `/jobs/${id}`);
      return res.status === 200 && res.body.state !== "dead" ? (res.body.state as string) : null;
    }, { what: `job ${id} to leave the dead letters` });
    expect(["pending", "scheduled", "inflight", "completed"]).toContain(state);
  });

  test("a type's Pause button holds its jobs on the server and Resume lets them run", async () => {
    const row = page.locator('#job-types tr[data-type="noop"]');
    await row.waitFor();
    await textIs('#job-types tr[data-type="noop"] td.state', "active");
    await row.locator("button.pause").click();
    await textIs('#job-types tr[data-type="noop"] td.state', "paused");
    const before = (await api("GET", "/types")).body.types.find((t: { type: string }) => t.type === "noop");
    expect(before).toMatchObject({ paused: true });
    const id = await submit({ type: "noop" });
    await textIs('#job-types tr[data-type="noop"] td:nth-child(4)', String(before.waiting + 1));
    expect((await api("GET", `/jobs/${id}`)).body.state).toBe("pending");
    await row.locator("button.resume").click();
    await textIs('#job-types tr[data-type="noop"] td.state', "active");
    await waitFor(async () => (await api("GET", `/jobs/${id}`)).body.state === "completed", { what: `job ${id} ran once resumed` });
  });

  test("Delete asks for confirmation and removes the dead job only when confirmed", async () => {
    const id = await submit({ type: "noop", payload: { fail: true } });
    const row = page.locator(`#dead tr[data-id="${id}"]`);
    await row.waitFor();

    const dismissed = nextDialog(false);
    await row.locator("button.delete").click();
    expect(await dismissed).toBe(`Delete dead job ${id}? This cannot be undone.`);
    expect((await api("GET", `/jobs/${id}`)).body.state).toBe("dead");

    const accepted = nextDialog(true);
    await row.locator("button.delete").click();
    await accepted;
    await row.waitFor({ state: "detached" });
    expect((await api("GET", `/jobs/${id}`)).status).toBe(404);
  });

  test("the types table shows each type's policy, effective concurrency and breaker, and the schedules their next run", async () => {
    const email = '#job-types tr[data-type="email.send"]';
    await page.waitForSelector(email);
    const policy = await page.textContent(`${email} td.policy`);
    expect(policy).toContain("rate 50 per 1 s (burst 10)");
    expect(policy).toContain("breaker after 10 failures, 30 s cool");
    expect(policy).toContain("timeout 1 h");
    expect(await page.textContent(`${email} td.concurrency`)).toBe("2");
    expect(await page.textContent(`${email} td.breaker`)).toBe("closed");
    expect(await page.textContent('#job-types tr[data-type="thumbnail.resize"] td.policy')).toContain("priority 40");

    const schedule = '#schedules tr[data-schedule="weekly-digest"]';
    await page.waitForSelector(schedule);
    const { nextTick } = (await api("GET", "/schedules")).body.schedules[0];
    const next = await page.$eval(`${schedule} td.next time`, (t) => {
      const time = t as unknown as { dateTime: string; title: string; textContent: string };
      return { dateTime: time.dateTime, title: time.title, text: time.textContent };
    });
    expect(next.dateTime).toBe(nextTick);
    const d = new Date(nextTick);
    expect(next.title).toBe(`${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`);
    expect(next.text).toMatch(/^in \d+ (min|h|d)$/);
    expect(await page.textContent(schedule)).toContain("cron 0 3 * * 1 (Europe/Berlin)");
  });

  test("the jobs browser lists one state and type, newest or oldest first, a page at a time", async () => {
    const ids = await submitMany(Array.from({ length: 23 }, (_, i) => ({ type: "thumbnail.resize", delayMs: 3_600_000, payload: { image: `img-${i}.png` } })));
    const newest = [...ids].reverse();
    await page.click('#jobs-tabs button[data-state="scheduled"]');
    await page.waitForFunction(`document.querySelector('#jobs-tabs button[data-state="scheduled"]').getAttribute("aria-pressed") === "true"`);
    await page.selectOption("#jobs-type", "thumbnail.resize");
    await page.selectOption("#jobs-limit", "10");
    const shows = (want: string[]) => page.waitForFunction(
      `JSON.stringify([...document.querySelectorAll("#jobs tbody tr[data-id]")].map((r) => r.dataset.id)) === ${JSON.stringify(JSON.stringify(want))}`);
    await shows(newest.slice(0, 10));
    expect(await page.textContent("#jobs-when")).toBe("runs");
    expect(await page.isDisabled("#jobs-prev")).toBe(true);
    await page.click("#jobs-next");
    await shows(newest.slice(10, 20));
    await page.click("#jobs-next");
    await shows(newest.slice(20));
    expect(await page.isDisabled("#jobs-next")).toBe(true);
    await page.click("#jobs-prev");
    await shows(newest.slice(10, 20));
    await page.selectOption("#jobs-order", "oldest");
    await shows(ids.slice(0, 10));
    // Another state, and the tab's count for the chosen type.
    await page.click('#jobs-tabs button[data-state="pending"]');
    await page.waitForFunction(`document.querySelector("#jobs tbody td.muted")?.textContent === "no pending jobs of type thumbnail.resize"`);
    await textIs('#jobs-tabs button[data-state="scheduled"]', "scheduled 23");
    // A count in the by-type table opens the browser on those jobs.
    await page.click('#types tr[data-type="noop"] a[data-state="scheduled"]');
    await page.waitForFunction(`document.querySelector("#jobs-type").value === "noop"`);
    await shows((await api("GET", "/jobs?state=scheduled&type=noop&order=oldest")).body.jobs.map((j: { id: string }) => j.id));
    expect(await rowIds("#jobs")).toHaveLength(3);
  });

  test("a job's page shows its payload pretty-printed as submitted, folds a large one, and Cancel removes a waiting job", async () => {
    // Sent as text: 2^53 + 1 and the escape must show exactly as written.
    const id = await submit('{"type":"email.send","delayMs":600000,"payload":{"to":"ada@example.com","n":9007199254740993,"tags":["a","b"],"note":"caf\\u00e9","empty":{}}}');
    await openJob(id);
    expect(await page.textContent("#job-payload")).toBe(
      '{\n  "to": "ada@example.com",\n  "n": 9007199254740993,\n  "tags": [\n    "a",\n    "b"\n  ],\n  "note": "caf\\u00e9",\n  "empty": {}\n}');
    expect(await page.getAttribute("#job-payload-box", "open")).not.toBeNull();
    expect(await page.textContent("#job-state")).toBe("scheduled");
    expect(await page.textContent("#job-waiting")).toBe("its run time (scheduled)");
    expect(await page.getAttribute("#job-runat time", "title")).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(await page.isVisible("#job-history")).toBe(false); // no attempt history in the answer: nothing shown

    const big = await submit({ type: "email.send", delayMs: 600_000, payload: { rows: Array.from({ length: 200 }, (_, i) => ({ i, name: `row ${i}` })) } });
    await openJob(big);
    expect(await page.getAttribute("#job-payload-box", "open")).toBeNull();
    expect(await page.isVisible("#job-payload-summary .fold-hint")).toBe(true);
    expect(await page.isVisible("#job-payload")).toBe(false);
    await page.click("#job-payload-summary");
    expect(await page.isVisible("#job-payload")).toBe(true);
    expect(await page.isVisible("#job-payload-summary .fold-hint")).toBe(false);
    expect(await page.textContent("#job-payload")).toContain('"name": "row 199"');

    await openJob(id);
    const question = nextDialog(true);
    await page.click("#job-cancel");
    expect(await question).toBe(`Cancel job ${id}? It will not run again.`);
    await page.waitForSelector("#job-missing", { state: "visible" });
    expect(await page.textContent("#job-missing")).toContain("not in the queue");
    expect((await api("GET", `/jobs/${id}`)).status).toBe(404);
    expect((await api("GET", `/jobs/${big}`)).body.state).toBe("scheduled");
  });

  test("a job's attempt history, when the answer carries one, is shown attempt by attempt", async () => {
    const id = await submit({ type: "email.send", delayMs: 600_000, payload: { to: "grace@example.com" } });
    // The server's answer with a made-up attempt history in place of its own (fixed statuses, exit codes and times to read back).
    const history = [
      { attempt: 1, node: "node-a", startedAt: "2026-12-02T10:00:00.000Z", endedAt: "2026-12-02T10:00:01.250Z", durationMs: 1250, outcome: "failed", status: 503, error: "webhook answered 503" },
      { attempt: 2, node: "node-b", startedAt: "2026-12-02T10:00:05.000Z", endedAt: "2026-12-02T10:00:35.000Z", durationMs: 30_000, outcome: "timeout", error: "timed out after 30 s" },
      { attempt: 3, node: "node-a", startedAt: "2026-12-02T10:01:00.000Z", endedAt: "2026-12-02T10:01:00.020Z", durationMs: 20, outcome: "failed", exitCode: 2, error: null },
    ];
    await page.route(`**/jobs/${id}`, async (route) => {
      const res = await route.fetch();
      const text = await res.text();
      await route.fulfill({ response: res, body: JSON.stringify({ ...JSON.parse(text), attemptHistory: history }) });
    });
    try {
      await openJob(id);
      await page.waitForSelector("#job-history", { state: "visible" });
      const rows = await page.$$eval("#job-attempt-history tbody tr", (trs) => trs.map((tr) =>
        [...(tr as unknown as { cells: { textContent: string }[] }).cells].map((td) => td.textContent)));
      expect(rows.map((r) => [r[0], r[1], r[4], r[5], r[6], r[7]])).toEqual([
        ["1", "node-a", "1.3 s", "failed", "HTTP 503", "webhook answered 503"],
        ["2", "node-b", "30 s", "timeout", "–", "timed out after 30 s"],
        ["3", "node-a", "20 ms", "failed", "exit 2", ""],
      ]);
      expect(await page.getAttribute('#job-attempt-history tr[data-attempt="2"] td:nth-child(3) time', "title")).toBe("2026-12-02 10:00:05 UTC");
    } finally {
      await page.unroute(`**/jobs/${id}`);
    }
    expect((await api("DELETE", `/jobs/${id}`)).status).toBe(204);
  });

  test("a dead job's page retries it, and it runs again", async () => {
    const id = await submit({ type: "report.build", payload: { fail: true, error: "template missing: weekly.html" } });
    await waitFor(async () => (await api("GET", `/jobs/${id}`)).body.state === "dead", { what: `job ${id} dead` });
    await openJob(id);
    await textIs("#job-state", "dead");
    expect(await page.textContent("#job-error")).toBe("template missing: weekly.html");
    expect(await page.isVisible("#job-delete")).toBe(true);
    await page.click("#job-retry");
    await waitFor(async () => (await api("GET", `/jobs/${id}`)).body.state === "completed", { what: `job ${id} completed after its retry` });
    await page.waitForFunction(`["pending", "inflight", "completed"].includes(${textOf("#job-state")})`);
    await backToDashboard();
  });

  test("Retry all and Purge all ask with the type's dead count, and act on every dead job of the type", async () => {
    const email = await submitMany(Array.from({ length: 3 }, (_, i) => ({ type: "email.send", payload: { fail: true, error: `SMTP 451: try again later (${i})` } })));
    const thumbs = await submitMany(Array.from({ length: 1234 }, (_, i) => ({ type: "thumbnail.resize", payload: { fail: true, image: `broken-${i}.png`, error: "corrupt image" } })));
    await waitFor(async () => (await deadOf("email.send")) === 3 && (await deadOf("thumbnail.resize")) === 1234, { what: "3 and 1,234 dead jobs", timeoutMs: 60_000 });
    await textIs('#dead-types tr[data-type="thumbnail.resize"] td.count', "1,234");

    const retryQuestion = nextDialog(true);
    await page.click('#dead-types tr[data-type="email.send"] button.retry-all');
    expect(await retryQuestion).toBe("Retry all 3 dead jobs of type email.send?");
    await waitFor(async () => {
      const states = await Promise.all(email.map(async (id) => (await api("GET", `/jobs/${id}`)).body.state));
      return states.every((s) => s === "completed");
    }, { what: "the retried email jobs completed" });
    await page.waitForSelector('#dead-types tr[data-type="email.send"]', { state: "detached" });

    const purge = '#dead-types tr[data-type="thumbnail.resize"] button.purge-all';
    const dismissed = nextDialog(false);
    await page.click(purge);
    expect(await dismissed).toBe("Delete all 1,234 dead jobs of type thumbnail.resize for good? This cannot be undone.");
    expect(await deadOf("thumbnail.resize")).toBe(1234);

    const accepted = nextDialog(true);
    await page.click(purge);
    expect(await accepted).toBe("Delete all 1,234 dead jobs of type thumbnail.resize for good? This cannot be undone.");
    await waitFor(async () => (await deadOf("thumbnail.resize")) === 0, { what: "the thumbnails purged" });
    for (const id of [thumbs[0]!, thumbs[1233]!]) expect((await api("GET", `/jobs/${id}`)).status).toBe(404);
    await page.waitForFunction(`${textOf("#status")}?.startsWith("deleted 1,234 dead jobs of type thumbnail.resize")`);
  });

  test("the charts are drawn from the server's history as soon as the page loads", async () => {
    const history = await waitFor(async () => {
      const h = (await api("GET", "/stats/history")).body;
      const completed = (h.series.completed as (number | null)[]).reduce<number>((a, b) => a + (b ?? 0), 0);
      return h.series.completed.length >= 5 && completed > 0 ? h : null;
    }, { what: "five seconds of history with completions" });
    await page.reload();
    // The first poll after the load: everything the server kept, not one reading per poll.
    await page.waitForFunction(`${textOf("#status")}?.startsWith("updated")`);
    const drawn = await page.evaluate(`(() => {
      const svg = document.querySelector("#chart-throughput");
      const d = svg.querySelector('path[data-series="completed"]').getAttribute("d");
      return { samples: Number(svg.dataset.samples), points: (d.match(/[ML]/g) || []).length };
    })()`) as { samples: number; points: number };
    expect(drawn.samples).toBeGreaterThanOrEqual(history.series.completed.length);
    expect(drawn.points).toBeGreaterThanOrEqual(5);
    for (const chart of ["depth", "wait"]) expect(Number(await page.getAttribute(`#chart-${chart}`, "data-samples"))).toBeGreaterThanOrEqual(5);
    expect(await page.textContent("#legend-throughput")).toContain("completed");
  });

  test("neither 1,280 nor 390 px wide scrolls sideways: wide tables scroll in their own box", async () => {
    const dead = await submit({ type: "email.send", payload: { fail: true, error: `upstream said: ${"x".repeat(300)}`, blob: "y".repeat(5000) } });
    await waitFor(async () => (await api("GET", `/jobs/${dead}`)).body.state === "dead", { what: "a dead job with a long error" });
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      await page.evaluate(`location.hash = "#overview"`);
      await page.waitForSelector("#view-dashboard", { state: "visible" });
      await page.locator(`#dead tr[data-id="${dead}"]`).waitFor();
      expect({ width, view: "dashboard", overflows: await overflowsSideways() }).toEqual({ width, view: "dashboard", overflows: false });
      await openJob(dead);
      await page.click("#job-payload-summary");
      expect({ width, view: "job", overflows: await overflowsSideways() }).toEqual({ width, view: "job", overflows: false });
    }
    await page.setViewportSize({ width: 1280, height: 1000 });
    await backToDashboard();
    expect((await api("DELETE", `/dead/${dead}`)).status).toBe(204);
  });

  test("a realistic queue renders (and, with JOBQUEUE_SCREENSHOT set, is the picture in docs/operations.md)", async () => {
    // Several types with work in every state, dead letters of two kinds, and the weekly schedule.
    await submitMany(Array.from({ length: 40 }, (_, i) => ({ type: "email.send", delayMs: 60_000 * (i + 1), payload: { to: `user${i}@example.com` } })));
    await submitMany(Array.from({ length: 6 }, (_, i) => ({ type: "email.send", payload: { fail: true, to: `bounce${i}@example.com`, error: "SMTP 550: mailbox unavailable" } })));
    await submitMany(Array.from({ length: 2 }, (_, i) => ({ type: "thumbnail.resize", payload: { fail: true, image: `huge-${i}.tiff`, error: "resize: image larger than 50 megapixels" } })));
    await submitMany(Array.from({ length: 150 }, (_, i) => ({ type: "thumbnail.resize", payload: { image: `img-${i}.png` } })));
    await waitFor(async () => (await deadOf("email.send")) >= 6 && (await deadOf("thumbnail.resize")) >= 2, { what: "the new dead letters" });
    await page.evaluate(`location.hash = "#overview"`);
    await page.locator('#dead-types tr[data-type="thumbnail.resize"]').waitFor();
    await page.click('#jobs-tabs button[data-state="scheduled"]');
    await page.selectOption("#jobs-type", "email.send");
    await page.selectOption("#jobs-limit", "10");
    await page.selectOption("#dead-limit", "10");
    await page.waitForFunction(`document.querySelectorAll("#jobs tbody tr[data-id]").length === 10`);
    await page.waitForFunction(`${textOf("#status")}?.startsWith("updated")`);

    mkdirSync("docs", { recursive: true });
    // The picture in docs/operations.md is refreshed only on request, so a test run leaves the tree clean.
    const shot = process.env.JOBQUEUE_SCREENSHOT ? "docs/dashboard.png" : join(tmpdir(), `jq-dashboard-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(1000);
  });
});
