// cross-site.test.ts: what another web page in the operator's browser can do to a server on
// loopback without a token, in a real headless Chromium: its no-preflight requests (a form, a
// no-cors fetch with or without a text/plain body) reach the server and are refused, and change
// nothing; while the server's own dashboard, same-origin, still retries a dead job.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { PermanentError } from "../src/errors.ts";
import type { Handler } from "../src/handlers/handler.ts";
import { startTestServer, type TestServer } from "./support/test-server.ts";
import { waitFor } from "./support/wait.ts";

const CHROMIUM = "/usr/bin/chromium";
const REBOUND = "rebound.attacker.test";

/** Jobs die on their first run and complete once retried. */
function failOnce(): Handler {
  const failed = new Set<number>();
  return (job) => {
    if (failed.has(job.id)) return;
    failed.add(job.id);
    throw new PermanentError("first run fails");
  };
}

/** The attacker's page: every request a page may send another origin without a CORS preflight. */
function attackPage(target: string): string {
  const retry = `${target}/dead/retry?type=doomed`;
  return `<!doctype html><title>loading</title>
<iframe name="sink"></iframe>
<form id="f" method="post" action="${retry}" target="sink"><input name="a" value="1"></form>
<script>
  const sent = [
    fetch(${JSON.stringify(retry)}, { method: "POST", mode: "no-cors" }),
    fetch(${JSON.stringify(retry)}, { method: "POST", mode: "no-cors", body: "x" }),
    fetch(${JSON.stringify(target + "/submit")}, { method: "POST", mode: "no-cors", body: '{"type":"doomed"}' }),
  ];
  const framed = new Promise((resolve) => document.querySelector("iframe").addEventListener("load", resolve, { once: true }));
  document.getElementById("f").submit();
  Promise.allSettled([...sent, framed]).then(() => { document.title = "done"; });
</script>`;
}

describe.skipIf(!existsSync(CHROMIUM))("another web page in the operator's browser, no token set", () => {
  let node: TestServer;
  let attacker: ReturnType<typeof Bun.serve>;
  let browser: Browser;
  let page: Page;
  const deadCount = async () =>
    ((await (await node.server.app.request("/stats")).json()) as { jobs: { dead: number } }).jobs.dead;

  beforeAll(async () => {
    node = await startTestServer({ handlers: { doomed: failOnce() } });
    const res = await fetch(`${node.server.url}/submit`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"type":"doomed"}' });
    expect(res.status).toBe(202);
    await waitFor(async () => (await deadCount()) === 1, { what: "a dead job" });
    // Another origin on the same machine (another port is another origin).
    attacker = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response(attackPage(node.server.url), { headers: { "content-type": "text/html" } }),
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        // DNS rebinding, as the browser sees it: a name of the attacker's that resolves to loopback.
        `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`],
    });
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    attacker?.stop(true);
    await node?.stop();
  });

  test("its form and no-cors fetches reach the server, are refused, and change nothing", async () => {
    const answered: { url: string; method: string; status: number }[] = [];
    page.on("response", (r) => {
      if (r.url().startsWith(node.server.url)) answered.push({ url: r.url().slice(node.server.url.length), method: r.request().method(), status: r.status() });
    });
    const rowsBefore = await node.rows();
    await page.goto(`http://127.0.0.1:${attacker.port}/`);
    await page.waitForFunction('document.title === "done"');
    await waitFor(() => answered.length === 4, { what: "the four forged requests answered" });
    expect(answered.map((a) => `${a.method} ${a.url} ${a.status}`).sort()).toEqual([
      "POST /dead/retry?type=doomed 403",
      "POST /dead/retry?type=doomed 403",
      "POST /dead/retry?type=doomed 403",
      "POST /submit 403",
    ]);
    expect(await deadCount()).toBe(1);
    expect(await node.rows()).toBe(rowsBefore);
  });

  test("a DNS-rebinding name reaching the server is refused, but for the probes", async () => {
    const base = `http://${REBOUND}:${node.server.port}`;
    for (const path of ["/stats", "/dead", "/ui", "/metrics"]) {
      const res = await page.goto(base + path);
      expect(res!.status()).toBe(403);
      expect(JSON.parse(await res!.text())).toMatchObject({ error: { code: "forbidden_host" } });
    }
    expect((await page.goto(`${base}/health`))!.status()).toBe(200);
    // The rebound page's own same-origin request cannot change anything either.
    await page.goto(`${base}/health`);
    const status = await page.evaluate(`fetch("/dead/retry?type=doomed", { method: "POST" }).then((r) => r.status)`);
    expect(status).toBe(403);
    expect(await deadCount()).toBe(1);
  });

  test("the server's own dashboard still retries the dead job (its fetches are same-origin)", async () => {
    await page.goto(`${node.server.url}/ui`);
    const row = page.locator("#dead tr").filter({ hasText: "first run fails" });
    await row.waitFor();
    await row.locator("button.retry").click();
    await row.waitFor({ state: "detached" });
    // Retried, it ran again and completed: it left the store.
    await waitFor(async () => (await node.rows()) === 0, { what: "the retried job done" });
  });
});
