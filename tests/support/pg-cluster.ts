// pg-cluster.ts (test support): a private PostgreSQL cluster in a temp directory on its own port,
// so fault tests can restart or stop "the database" without touching the machine's cluster.
import { chownSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function pgBin(name: string): string {
  const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a));
  return join("/usr/lib/postgresql", versions[0]!, "bin", name);
}

async function asPostgres(cmd: string[]): Promise<string> {
  // Root may not run PostgreSQL: run its tools as the postgres user.
  const argv = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd;
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}): ${err || out}`);
  return out;
}

export interface PrivateCluster {
  url: string;
  port: number;
  restart(mode: "fast" | "immediate"): Promise<void>;
  stop(mode?: "fast" | "immediate"): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export async function createPrivateCluster(): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), "jq-pgcluster-"));
  if (process.getuid?.() === 0) chownSync(dir, Number(await asIdOf("postgres", "-u")), Number(await asIdOf("postgres", "-g")));
  const data = join(dir, "data");
  const port = 20000 + Math.floor(Math.random() * 20000);
  await asPostgres([pgBin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=50`;
  const pgCtl = (...args: string[]) => asPostgres([pgBin("pg_ctl"), "-D", data, "-l", join(dir, "log"), "-w", "-o", opts, ...args]);
  await pgCtl("start");
  const cluster: PrivateCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: async (mode) => void (await pgCtl("restart", "-m", mode)),
    stop: async (mode = "fast") => void (await pgCtl("stop", "-m", mode)),
    start: async () => void (await pgCtl("start")),
    destroy: async () => {
      await pgCtl("stop", "-m", "immediate").catch(() => {});
      await Bun.spawn(["rm", "-rf", dir]).exited;
    },
  };
  return cluster;
}

async function asIdOf(user: string, flag: "-u" | "-g"): Promise<string> {
  const p = Bun.spawn(["id", flag, user], { stdout: "pipe" });
  return (await new Response(p.stdout).text()).trim();
}
