// dashboard.test.ts: GET /ui in a real headless Chromium against a real server behind the token
// gate: the counts render and follow submits, the dead-letter buttons work, a type's Pause and Resume
// buttons hold and release its jobs, and the lookup shows a job.
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

/** A job whose payload says `fail` dies on its first run and completes once retried. */
function failOnceHandler(): Handler {
  const failed = new Set<number>();
  return (job) => {
    const payload = job.payload as { fail?: boolean } | null;
    if (payload?.fail && !failed.has(job.id)) {
      failed.add(job.id);
      throw new PermanentError("the payload asked to fail");
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
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === "" ? null : JSON.parse(text) };
  };
  const submit = async (job: Record<string, unknown>) => {
    const res = await api("POST", "/submit", job);
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  // Browser-side conditions are passed as source text: this project's TypeScript has no DOM types.
  const textOf = (selector: string) => `document.querySelector(${JSON.stringify(selector)})?.textContent`;
  const textIs = (selector: string, value: string) => page.waitForFunction(`${textOf(selector)} === ${JSON.stringify(value)}`);

  beforeAll(async () => {
    node = await startTestServer({
      args: ["--token", TOKEN, "--keep-completed", "10m", "--workers", "2"],
      handler: failOnceHandler(),
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
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
    // The wait chart has a reading: a mean in ms over a poll interval, or "idle" when none started.
    await page.waitForFunction(`/^([0-9.]+ ms|idle)$/.test(${textOf("#wait")} ?? "")`);
  });

  test("a dead job is listed, can be looked up, and its Retry button sends it back to run", async () => {
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

    mkdirSync("docs", { recursive: true });
    // The picture in docs/operations.md is refreshed only on request, so a test run leaves the tree clean.
    const shot = process.env.JOBQUEUE_SCREENSHOT ? "docs/dashboard.png" : join(tmpdir(), `jq-dashboard-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(1000);

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

    page.once("dialog", (d) => d.dismiss());
    await row.locator("button.delete").click();
    expect((await api("GET", `/jobs/${id}`)).body.state).toBe("dead");

    page.once("dialog", (d) => d.accept());
    await row.locator("button.delete").click();
    await row.waitFor({ state: "detached" });
    expect((await api("GET", `/jobs/${id}`)).status).toBe(404);
  });
});
