// wrk.ts (bench): the HTTP load generator. Runs wrk with a fixed JSON POST body and a Lua hook that
// counts 202s and every other status; reads its summary line. Starts no server itself.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface WrkResult {
  /** Responses with status 202, other statuses, and socket errors. */
  ok: number;
  non202: number;
  errors: number;
  durationS: number;
  p50Ms: number;
  p99Ms: number;
  /** wrk's own CPU use over its run, in percent of one core. */
  cpuPercent: number;
  /** The non-202 answers by class, and the status of the last one seen. */
  non202By: { "4xx": number; "5xx": number; last: number };
}

/**
 * wrk against POST <url> with a fixed JSON body. A Lua response() hook counts 202s and everything
 * else per thread; done() sums the threads and prints one machine-readable line.
 */
export async function runWrk(opts: {
  url: string;
  body: string;
  connections: number;
  threads: number;
  durationS: number;
}): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), "jqbench-wrk-"));
  const script = join(dir, "post.lua");
  const bodyLua = opts.body.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
  writeFileSync(script, `
wrk.method = "POST"
wrk.body = "${bodyLua}"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0; s4 = 0; s5 = 0; last = 0 end
function response(status, headers, body)
  if status == 202 then ok = ok + 1 else
    bad = bad + 1; last = status
    if status >= 500 then s5 = s5 + 1 elseif status >= 400 then s4 = s4 + 1 end
  end
end
function done(summary, latency, requests)
  local o, b, f4, f5, l = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad"); f4 = f4 + t:get("s4"); f5 = f5 + t:get("s5")
    if t:get("last") ~= 0 then l = t:get("last") end
  end
  local e = summary.errors
  io.write(string.format("@@wrk %d %d %d %d %d %d %d %d %d\\n", o, b, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), f4, f5, l))
end
`);
  const proc = Bun.spawn(
    ["wrk", `-t${opts.threads}`, `-c${opts.connections}`, `-d${opts.durationS}s`, "--timeout", "10s", "-s", script, opts.url],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  rmSync(dir, { recursive: true, force: true });
  const line = out.split("\n").find((l) => l.startsWith("@@wrk "));
  if (code !== 0 || !line) throw new Error(`wrk failed (${code}): ${err || out}`);
  const [ok, bad, errors, durUs, p50Us, p99Us, s4, s5, last] = line.slice(6).trim().split(/\s+/).map(Number) as number[];
  const cpuUs = Number(proc.resourceUsage()?.cpuTime.total ?? 0);
  return {
    ok: ok!, non202: bad!, errors: errors!, durationS: durUs! / 1e6, p50Ms: p50Us! / 1000, p99Ms: p99Us! / 1000,
    cpuPercent: (100 * cpuUs) / durUs!, non202By: { "4xx": s4!, "5xx": s5!, last: last! },
  };
}

export function wrkVersion(): string {
  const r = Bun.spawnSync(["wrk", "-v"], { stdout: "pipe", stderr: "pipe" });
  const text = r.stdout.toString() + r.stderr.toString();
  return /wrk (\S+)/.exec(text)?.[1] ?? "missing";
}
