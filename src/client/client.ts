// client.ts: a typed HTTP client for producers and operators of a running jobqueue server: submit,
// read, cancel, dead letters, job types (pause, resume), stats and backups. Types come from the API's own zod schemas (type-only
// imports: nothing of the server is loaded). Any fetch works (Bun, Node 18+, browsers).
import type { z } from "zod";
import type {
  countReply, deadPage, jobView, pauseReply, schedulesReply, statsReply, submitBatchReply, submitReply, typeEntry, typesReply,
} from "../http/api-schema.ts";
import type { jobSchema } from "../http/submit-schema.ts";
import { JobQueueClientError } from "../errors.ts";

export { JobQueueClientError };

/** One job as a producer sends it. */
export type SubmitJob = z.input<typeof jobSchema>;
export type Job = z.output<typeof jobView>;
export type DeadPage = z.output<typeof deadPage>;
export type Stats = z.output<typeof statsReply>;
export type ScheduleList = z.output<typeof schedulesReply>;
export type CancelResult = "removed" | "cancelling" | "not_found";
/** A registered job type: its policy, whether it is paused, its jobs running and waiting. */
export type JobType = z.output<typeof typeEntry>;
export type PauseState = z.output<typeof pauseReply>;

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  /** Sent as Authorization: Bearer <token> when set. */
  token?: string;
  fetch?: typeof fetch;
}

export function createClient(opts: ClientOptions) {
  const base = opts.baseUrl.replace(/\/+$/, "");
  const doFetch = opts.fetch ?? fetch;

  async function request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    return doFetch(`${base}${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
  }

  async function fail(res: Response): Promise<never> {
    let code = "http_error";
    let message = `HTTP ${res.status}`;
    try {
      const parsed = (await res.json()) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code ?? code;
      message = parsed.error?.message ?? message;
    } catch {
      // Not our JSON envelope (a proxy's page, say): keep the status.
    }
    const retryAfter = Number(res.headers.get("retry-after"));
    throw new JobQueueClientError(res.status, code, message, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null);
  }

  /** The JSON body of a 2xx answer; anything else throws JobQueueClientError. */
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await request(method, path, body);
    if (!res.ok) return fail(res);
    return (await res.json()) as T;
  }

  function listDead(query: { type?: string; after?: string; limit?: number } = {}): Promise<DeadPage> {
    const params = new URLSearchParams();
    if (query.type !== undefined) params.set("type", query.type);
    if (query.after !== undefined) params.set("after", query.after);
    if (query.limit !== undefined) params.set("limit", String(query.limit));
    const qs = params.toString();
    return call<DeadPage>("GET", `/dead${qs ? `?${qs}` : ""}`);
  }

  const jobPath = (id: string | number) => `/jobs/${encodeURIComponent(String(id))}`;
  const typePath = (type: string) => `/types/${encodeURIComponent(type)}`;
  const deadPath = (id: string | number) => `/dead/${encodeURIComponent(String(id))}`;

  return {
    /** Submit one job; `duplicate` is true when its idempotency key was held (the id is the holder's). */
    async submit(job: SubmitJob): Promise<{ id: string; duplicate: boolean }> {
      const r = await call<z.output<typeof submitReply>>("POST", "/submit", job);
      return { id: r.id, duplicate: r.duplicate === true };
    },

    /** Submit 1 to 1000 jobs, all or nothing; ids in input order. */
    async submitBatch(jobs: SubmitJob[]): Promise<{ ids: string[]; duplicates: boolean[] }> {
      const r = await call<z.output<typeof submitBatchReply>>("POST", "/submit", { jobs });
      return { ids: r.ids, duplicates: r.duplicates ?? r.ids.map(() => false) };
    },

    /** The job, or null when it is unknown (or completed and not kept). */
    async get(id: string | number): Promise<Job | null> {
      const res = await request("GET", jobPath(id));
      if (res.status === 404) return null;
      if (!res.ok) return fail(res);
      return (await res.json()) as Job;
    },

    /** removed (it was waiting), cancelling (running on that server), not_found (unknown, done or dead); 409 throws. */
    async cancel(id: string | number): Promise<CancelResult> {
      const res = await request("DELETE", jobPath(id));
      if (res.status === 204) return "removed";
      if (res.status === 202) {
        await res.text();
        return "cancelling";
      }
      if (res.status === 404) return "not_found";
      return fail(res);
    },

    stats: () => call<Stats>("GET", "/stats"),

    /**
     * A consistent copy of the server's embedded store, streamed (GET /admin/backup), with the length
     * and SHA-256 the server gives for it. A server on PostgreSQL throws 409 backup_unsupported.
     */
    async backup(): Promise<{ body: ReadableStream<Uint8Array>; bytes: number | null; sha256: string | null }> {
      const res = await request("GET", "/admin/backup");
      if (!res.ok || res.body === null) return fail(res);
      const bytes = Number(res.headers.get("x-backup-bytes") ?? NaN);
      return { body: res.body, bytes: Number.isSafeInteger(bytes) ? bytes : null, sha256: res.headers.get("x-backup-sha256") };
    },
    /** The recurring schedules with their next and last ticks. */
    schedules: () => call<ScheduleList>("GET", "/schedules"),

    types: {
      /** Every registered type, by name. */
      async list(): Promise<JobType[]> {
        return (await call<z.output<typeof typesReply>>("GET", "/types")).types;
      },
      /** Pause a type on every node sharing the server's database (idempotent); an unknown type throws 404 not_found. */
      pause: (type: string) => call<PauseState>("POST", `${typePath(type)}/pause`),
      /** Resume a paused type (idempotent); an unknown type throws 404 not_found. */
      resume: (type: string) => call<PauseState>("POST", `${typePath(type)}/resume`),
    },

    dead: {
      /** One page of dead jobs; pass `next` back as `after` for the following one. */
      list: listDead,
      /** Every dead job, page by page. */
      async *all(query: { type?: string; pageSize?: number } = {}): AsyncGenerator<Job> {
        let after: string | undefined;
        for (;;) {
          const page = await listDead({ ...(query.type !== undefined && { type: query.type }), ...(after !== undefined && { after }), limit: query.pageSize ?? 500 });
          yield* page.jobs;
          if (page.next === null) return;
          after = page.next;
        }
      },
      /** true when it was dead and is pending again; false when it was not dead. */
      async retry(id: string | number): Promise<boolean> {
        const res = await request("POST", `${deadPath(id)}/retry`);
        if (res.status === 404) return false;
        if (!res.ok) return fail(res);
        await res.text();
        return true;
      },
      /** true when it was dead and is deleted; false when it was not dead. */
      async delete(id: string | number): Promise<boolean> {
        const res = await request("DELETE", deadPath(id));
        if (res.status === 404) return false;
        if (!res.ok) return fail(res);
        return true;
      },
      /** Retry every dead job of `type`; how many. */
      async retryType(type: string): Promise<number> {
        return (await call<z.output<typeof countReply>>("POST", `/dead/retry?type=${encodeURIComponent(type)}`)).count;
      },
      /** Delete every dead job of `type`; how many. */
      async purgeType(type: string): Promise<number> {
        return (await call<z.output<typeof countReply>>("DELETE", `/dead?type=${encodeURIComponent(type)}`)).count;
      },
    },
  };
}

export type JobQueueClient = ReturnType<typeof createClient>;
