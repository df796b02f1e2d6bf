// proc.ts (bench): readings from /proc about other processes: RSS, and CPU use over a window for
// named groups (the server, every postgres process). Reads only; never signals anything.
import { readFileSync, readdirSync } from "node:fs";

const CLK_TCK = 100;

/** RSS of a process in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return 0; // the process ended
  }
}

function pidsByName(name: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * CPU use (percent of one core) of named groups of processes over a window: `start()` reads the
 * tick counters, `stop()` reads them again. "postgres" sums every postgres process.
 */
export function cpuMeter(groups: Record<string, () => number[]>) {
  let t0 = 0;
  let before = new Map<number, number>();
  const all = () => new Set(Object.values(groups).flatMap((g) => g()));
  return {
    start() {
      t0 = performance.now();
      before = new Map([...all()].map((pid) => [pid, cpuTicks(pid)]));
    },
    stop(): Record<string, number> {
      const seconds = (performance.now() - t0) / 1000;
      const out: Record<string, number> = {};
      for (const [name, pids] of Object.entries(groups)) {
        let ticks = 0;
        for (const pid of pids()) ticks += cpuTicks(pid) - (before.get(pid) ?? 0);
        out[name] = (100 * ticks) / CLK_TCK / seconds;
      }
      return out;
    },
  };
}

export const postgresPids = () => pidsByName("postgres");

export function fmtCpu(cpu: Record<string, number>): string {
  return "CPU " + Object.entries(cpu).map(([k, v]) => `${k} ${Math.round(v)}%`).join(", ");
}

interface ProcInfo {
  ppid: number;
  ticks: number;
  comm: string;
}

function allProcs(): Map<number, ProcInfo> {
  const out = new Map<number, ProcInfo>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const fields = stat.slice(close + 2).split(" ");
      out.set(Number(entry), {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
        comm: stat.slice(stat.indexOf("(") + 1, close),
      });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether `pid` descends from `root` (or is it). */
function inTree(procs: Map<number, ProcInfo>, pid: number, root: number): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
    if (p === root) return true;
    const next = procs.get(p)?.ppid;
    if (next === undefined) return false;
    p = next;
  }
  return false;
}

/**
 * CPU used by processes that are not ours over a window, in percent of one core: everything
 * outside `root`'s process tree, except the shared PostgreSQL cluster (its postmaster's children
 * serve our benchmark databases, and cannot be told apart from other clients here), Redis and
 * kernel threads. Other tests, builds or benchmarks running on the machine show up here.
 */
export function foreignCpuMeter(root: number, sharedPostmaster: number | undefined) {
  let t0 = 0;
  let before = new Map<number, ProcInfo>();
  const foreign = (procs: Map<number, ProcInfo>, pid: number, info: ProcInfo) =>
    pid !== 2 && info.ppid !== 2 && info.comm !== "redis-server" &&
    !(sharedPostmaster !== undefined && (pid === sharedPostmaster || info.ppid === sharedPostmaster)) &&
    !inTree(procs, pid, root);
  return {
    start() {
      t0 = performance.now();
      before = allProcs();
    },
    /** Percent of one core, and the busiest foreign command seen. */
    stop(): { percent: number; top: string } {
      const seconds = (performance.now() - t0) / 1000;
      const now = allProcs();
      let ticks = 0;
      const byComm = new Map<string, number>();
      for (const [pid, info] of now) {
        if (!foreign(now, pid, info)) continue;
        const used = info.ticks - (before.get(pid)?.ticks ?? 0);
        if (used <= 0) continue;
        ticks += used;
        byComm.set(info.comm, (byComm.get(info.comm) ?? 0) + used);
      }
      const top = [...byComm].sort((a, b) => b[1] - a[1])[0];
      return { percent: (100 * ticks) / CLK_TCK / seconds, top: top ? top[0] : "" };
    },
  };
}
