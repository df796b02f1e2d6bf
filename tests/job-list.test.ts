// job-list.test.ts: browsing jobs over HTTP on a real queue, once on each store: GET /jobs by state
// and type, newest or oldest first, page after page by its cursor, within its byte budget; GET /dead
// newest first; and bad queries answered with a 400 naming the parameter, changing nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { PermanentError } from "../src/errors.ts";
import type { Handler } from "../src/handlers/handler.ts";
import { JOB_PAGE_MAX_BYTES } from "../src/http/api-schema.ts";
import { STORE_KINDS, call, startQueue, storeSite, type TestQueue } from "./support/queues.ts";
import { waitFor } from "./support/wait.ts";

/** Holds its worker until the queue shuts down. */
const hold: Handler = (_job, signal) => new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
const doomed: Handler = () => {
  throw new PermanentError("doomed from the start");
};

type Page = { jobs: Record<string, unknown>[]; next: string | null };

for (const kind of STORE_KINDS) {
  describe(`GET /jobs on ${kind}`, () => {
    let site: Awaited<ReturnType<typeof storeSite>>;
    let q: TestQueue;
    /** Ids by what they are: held running, waiting behind them, scheduled, dead, completed. */
    const ids = { running: [] as string[], waiting: [] as string[], later: [] as string[], dead: [] as string[], done: [] as string[] };

    const page = async (query: string): Promise<Page> => {
      const res = await call(q, "GET", `/jobs?${query}`);
      expect({ query, status: res.status }).toEqual({ query, status: 200 });
      return res.body as Page;
    };
    /** Every page from the first, following `next`. */
    const pages = async (query: string): Promise<string[][]> => {
      const out: string[][] = [];
      for (let next: string | null = null; ;) {
        const p: Page = await page(next === null ? query : `${query}&after=${next}`);
        out.push(p.jobs.map((j) => j.id as string));
        if (p.next === null) return out;
        next = p.next;
      }
    };

    beforeAll(async () => {
      site = await storeSite(kind);
      q = await startQueue(site.open(), { hold: { handler: hold, policy: { concurrency: 2 } }, doomed, quick: () => {} }, { keepCompletedMs: 600_000, workers: 4 });
      const submit = async (job: Record<string, unknown>) => (await call(q, "POST", "/submit", job)).body.id as string;
      for (let i = 0; i < 2; i++) ids.running.push(await submit({ type: "hold", payload: { i } }));
      await waitFor(async () => (await call(q, "GET", `/jobs/${ids.running[1]}`)).body.state === "inflight", { what: "two held jobs running" });
      // The type's concurrency (2) is taken: these wait, due.
      // Sent as text: 2^53 + 1 must reach the store as written (JSON.stringify would round it).
      for (let i = 0; i < 5; i++) {
        const res = await q.app.request("/submit", {
          method: "POST", headers: { "content-type": "application/json" }, body: `{"type":"hold","payload":{"big":9007199254740993,"i":${i}}}`,
        });
        ids.waiting.push(((await res.json()) as { id: string }).id);
      }
      for (let i = 0; i < 3; i++) ids.later.push(await submit({ type: "hold", delayMs: 600_000 }));
      for (let i = 0; i < 3; i++) ids.dead.push(await submit({ type: "doomed", payload: { i } }));
      for (let i = 0; i < 2; i++) ids.done.push(await submit({ type: "quick" }));
      await waitFor(async () => {
        const stats = (await call(q, "GET", "/stats")).body;
        return stats.jobs.dead === 3 && stats.jobs.completed === 2;
      }, { what: "dead and completed jobs" });
    });
    afterAll(async () => {
      await q?.shutdown(0);
      await site?.drop();
    });

    test("lists each state's jobs of a type, oldest first by default and newest first when asked", async () => {
      expect((await page("state=inflight&type=hold")).jobs.map((j) => j.id)).toEqual(ids.running);
      expect((await page("state=pending&type=hold")).jobs.map((j) => j.id)).toEqual(ids.waiting);
      expect((await page("state=pending&type=hold&order=newest")).jobs.map((j) => j.id)).toEqual([...ids.waiting].reverse());
      expect((await page("state=scheduled&order=oldest")).jobs.map((j) => j.id)).toEqual(ids.later);
      expect((await page("state=dead&type=doomed&order=newest")).jobs.map((j) => j.id)).toEqual([...ids.dead].reverse());
      expect((await page("state=completed")).jobs.map((j) => j.id)).toEqual(ids.done);
      expect(await page("state=pending&type=doomed")).toEqual({ jobs: [], next: null });
      expect(await page("state=pending&type=no.such.type")).toEqual({ jobs: [], next: null });
    });

    test("each job reads as GET /jobs/:id shows it, its payload spliced in as submitted", async () => {
      for (const [state, id] of [["pending", ids.waiting[0]], ["inflight", ids.running[0]], ["scheduled", ids.later[0]], ["dead", ids.dead[0]], ["completed", ids.done[0]]] as const) {
        const listed = (await page(`state=${state}&limit=500`)).jobs.find((j) => j.id === id);
        expect({ state, listed }).toEqual({ state, listed: (await call(q, "GET", `/jobs/${id}`)).body });
      }
      const text = await (await q.app.request(`/jobs?state=pending&type=hold&limit=1`)).text();
      expect(text).toContain(`"payload":{"big":9007199254740993,"i":0}}`);
      const [waiting] = (await page("state=pending&type=hold&limit=1")).jobs;
      expect(waiting).toMatchObject({ state: "pending", waitingFor: "type_concurrency" });
      const [dead] = (await page("state=dead&limit=1")).jobs;
      expect(dead).toMatchObject({ state: "dead", lastError: "doomed from the start" });
      expect(typeof dead!.failedAt).toBe("string");
      expect(dead!.waitingFor).toBeUndefined();
    });

    test("pages follow `next` with no job twice and none left out, in either order", async () => {
      for (const order of ["oldest", "newest"]) {
        for (const limit of [1, 2, 3, 5]) {
          const got = await pages(`state=pending&type=hold&order=${order}&limit=${limit}`);
          expect(got.every((p) => p.length <= limit)).toBe(true);
          expect({ order, limit, ids: got.flat() }).toEqual({ order, limit, ids: order === "oldest" ? ids.waiting : [...ids.waiting].reverse() });
        }
      }
      // A full last page still says there may be more; the page after it is empty and ends the listing.
      const exact = await page("state=pending&type=hold&limit=5");
      expect(exact.jobs).toHaveLength(5);
      expect(exact.next).toBeNull();
      const four = await page("state=pending&type=hold&limit=4");
      expect(four.next).toBe(ids.waiting[3]!);
    });

    test("GET /dead lists newest first with order=newest and pages down by its cursor; its default order is unchanged", async () => {
      const first = (await call(q, "GET", "/dead?order=newest&limit=2")).body as Page;
      expect(first.jobs.map((j) => j.id)).toEqual([ids.dead[2], ids.dead[1]]);
      expect(first.next).toBe(ids.dead[1]!);
      const second = (await call(q, "GET", `/dead?order=newest&limit=2&after=${first.next}`)).body as Page;
      expect(second).toMatchObject({ jobs: [{ id: ids.dead[0] }], next: null });
      expect(((await call(q, "GET", "/dead")).body as Page).jobs.map((j) => j.id)).toEqual(ids.dead);
      expect(((await call(q, "GET", `/dead?after=${ids.dead[0]}`)).body as Page).jobs.map((j) => j.id)).toEqual(ids.dead.slice(1));
    });

    test("a bad query is a 400 JSON error naming the parameter, and changes nothing", async () => {
      const before = (await call(q, "GET", "/stats")).body.jobs;
      for (const [query, name] of [
        ["", "state"], ["type=hold", "state"], ["state=gone", "state"], ["state=PENDING", "state"], ["state=pending&order=sideways", "order"],
        ["state=pending&limit=0", "limit"], ["state=pending&limit=501", "limit"], ["state=pending&limit=ten", "limit"],
        ["state=pending&after=-1", "after"], ["state=pending&after=1.5", "after"], ["state=pending&after=9007199254740992", "after"],
        ["state=pending&type=a%20b", "type"], ["state=pending&color=red", "color"],
      ] as const) {
        const res = await q.app.request(`/jobs?${query}`);
        expect({ query, status: res.status, type: res.headers.get("content-type") }).toEqual({ query, status: 400, type: "application/json" });
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect({ query, code: body.error.code }).toEqual({ query, code: "invalid_request" });
        expect(body.error.message).toStartWith(`${name}: `);
      }
      expect(((await q.app.request("/jobs")).status)).toBe(400);
      expect((await call(q, "GET", "/dead?order=newer")).status).toBe(400);
      expect((await call(q, "GET", "/stats")).body.jobs).toEqual(before);
    });

    test("GET /jobs takes no other method, and GET /jobs/:id still reads one job", async () => {
      for (const method of ["POST", "DELETE", "PUT"]) {
        const res = await q.app.request("/jobs?state=pending", { method });
        expect({ method, status: res.status, allow: res.headers.get("allow") }).toEqual({ method, status: 405, allow: "GET, HEAD" });
      }
      expect((await q.app.request("/jobs?state=pending", { method: "HEAD" })).status).toBe(200);
      expect((await call(q, "GET", `/jobs/${ids.waiting[0]}`)).body).toMatchObject({ id: ids.waiting[0], state: "pending" });
    });
  });
}

describe("GET /jobs holds at most about 4 MiB of payload per page", () => {
  let site: Awaited<ReturnType<typeof storeSite>>;
  let q: TestQueue;
  beforeAll(async () => {
    site = await storeSite("sqlite");
    q = await startQueue(site.open(), { hold }, { workers: 1 });
  });
  afterAll(async () => {
    await q?.shutdown(0);
    await site?.drop();
  });

  test("a page of large payloads stops at the byte bound, and `next` pages on from the last job shown, newest first too", async () => {
    // 20 scheduled jobs of 240,002 payload bytes each: 17 fit in 4 MiB, 18 do not.
    const payloads = Array.from({ length: 20 }, (_, i) => JSON.stringify(String.fromCharCode(97 + i).repeat(240_000)));
    const ids: string[] = [];
    for (let i = 0; i < payloads.length; i += 4) {
      const body = `{"jobs":[${payloads.slice(i, i + 4).map((p) => `{"type":"hold","delayMs":600000,"payload":${p}}`).join(",")}]}`;
      const res = await q.app.request("/submit", { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(202);
      ids.push(...((await res.json()) as { ids: string[] }).ids);
    }
    const get = async (path: string) => {
      const res = await q.app.request(path);
      expect(res.status).toBe(200);
      const text = await res.text();
      return { bytes: Buffer.byteLength(text), page: JSON.parse(text) as { jobs: { id: string; payload: string }[]; next: string | null } };
    };
    const first = await get("/jobs?state=scheduled&limit=500");
    expect(first.page.jobs.map((j) => j.id)).toEqual(ids.slice(0, 17));
    expect(first.page.next).toBe(ids[16]!);
    expect(first.bytes).toBeLessThan(JOB_PAGE_MAX_BYTES + 17 * 1000);
    const second = await get(`/jobs?state=scheduled&limit=500&after=${first.page.next}`);
    expect(second.page.jobs.map((j) => j.id)).toEqual(ids.slice(17));
    expect(second.page.next).toBeNull();
    expect([...first.page.jobs, ...second.page.jobs].map((j) => JSON.stringify(j.payload))).toEqual(payloads);

    const newest = await get("/jobs?state=scheduled&order=newest&limit=500");
    expect(newest.page.jobs.map((j) => j.id)).toEqual([...ids].reverse().slice(0, 17));
    const rest = await get(`/jobs?state=scheduled&order=newest&limit=500&after=${newest.page.next}`);
    expect(rest.page).toMatchObject({ next: null });
    expect(rest.page.jobs.map((j) => j.id)).toEqual([...ids].reverse().slice(17));
  }, 60_000);
});
