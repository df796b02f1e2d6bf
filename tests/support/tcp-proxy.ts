// tcp-proxy.ts (test support): a TCP proxy between the store and PostgreSQL that a test can take
// down (connections refused, open ones cut) and bring back, or tell to lose the answer to the next
// statement it forwards (the statement reaches the database, its reply never comes back).
import type { Socket, TCPSocketListener } from "bun";

interface Pair {
  client: Socket<Pair>;
  upstream: Socket<unknown> | null;
  /** Client bytes that arrived before the upstream connection was open. */
  pending: Buffer[];
  /** Set once the answer to what was just forwarded must never reach the client. */
  muted: boolean;
}

export interface TcpProxy {
  readonly port: number;
  /** `url` with its host and port pointing at the proxy. */
  via(url: string): string;
  /** Refuse new connections (the port closes) and cut the open ones. */
  down(): void;
  /** Listen again on the same port. */
  up(): void;
  /**
   * The next client bytes containing `marker` are forwarded, then their connection is cut before
   * any answer comes back. Resolves when that has happened.
   */
  loseAnswerTo(marker: string): Promise<void>;
  close(): void;
}

export function startTcpProxy(target: { host: string; port: number }): TcpProxy {
  const pairs = new Set<Pair>();
  let armed: { marker: string; done: () => void } | null = null;
  let listener: TCPSocketListener<Pair> | null = null;
  let port = 0;

  const cut = (pair: Pair) => {
    pairs.delete(pair);
    pair.upstream?.terminate();
    pair.client.terminate();
  };

  const forward = (pair: Pair, data: Buffer) => {
    pair.upstream!.write(data);
    if (armed && data.includes(armed.marker)) {
      const { done } = armed;
      armed = null;
      // The database has the statement; drop whatever it answers from now on, then close.
      pair.muted = true;
      setTimeout(() => {
        cut(pair);
        done();
      }, 0);
    }
  };

  const listen = () => {
    listener = Bun.listen<Pair>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(client) {
          const pair: Pair = { client, upstream: null, pending: [], muted: false };
          client.data = pair;
          pairs.add(pair);
          Bun.connect({
            hostname: target.host,
            port: target.port,
            socket: {
              open(upstream) {
                pair.upstream = upstream;
                for (const chunk of pair.pending.splice(0)) forward(pair, chunk);
              },
              data(_upstream, data) {
                if (pairs.has(pair) && !pair.muted) pair.client.write(data);
              },
              close() {
                if (pairs.has(pair)) cut(pair);
              },
              error() {
                if (pairs.has(pair)) cut(pair);
              },
            },
          }).catch(() => cut(pair));
        },
        data(client, data) {
          const pair = client.data;
          if (pair.upstream === null) pair.pending.push(Buffer.from(data));
          else forward(pair, Buffer.from(data));
        },
        close(client) {
          if (pairs.has(client.data)) cut(client.data);
        },
        error(client) {
          if (pairs.has(client.data)) cut(client.data);
        },
      },
    });
    port = listener.port;
  };
  listen();

  return {
    get port() {
      return port;
    },
    via(url) {
      const u = new URL(url);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    down() {
      listener?.stop(true);
      listener = null;
      for (const pair of [...pairs]) cut(pair);
    },
    up() {
      if (listener === null) listen();
    },
    loseAnswerTo(marker) {
      return new Promise<void>((done) => (armed = { marker, done }));
    },
    close() {
      this.down();
    },
  };
}
