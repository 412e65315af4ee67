/**
 * Test helpers for limits, shutdown, fuzz and fault tests: the server script
 * as a child process, a bounded wait on a condition, and TCP proxies that cut
 * or hold a connection. Generic helpers (the seeded PRNG among them) are in
 * `tests/_util/util.ts`.
 *
 * @module
 */

import { SERVER_SCRIPT, spawnScript } from "./util.ts";

/**
 * Waits until `condition()` holds, checking every `intervalMs`, for at most
 * `timeoutMs`; throws if it never does. For conditions no event signals
 * (the size of a file another process writes).
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 2,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Rejects with `what` if `promise` does not settle within `ms`. */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Size of a file, or -1 when it does not exist. */
export async function sizeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return -1;
    throw error;
  }
}

/** The server script running as a child process. */
export interface ServerChild {
  /** The child. */
  child: Deno.ChildProcess;
  /** The port it listens on. */
  port: number;
  /** The rest of its stdout and its whole stderr, once it has exited. */
  output(): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * Starts `server.ts` with `args` (plus `--port 0`) and waits for its
 * `Listening on` line. With `shell`, the command runs as
 * `bash -c "<shell>; exec deno run ..."` (to set `ulimit`, say).
 */
export async function startServerChild(
  args: string[],
  options: { shell?: string } = {},
): Promise<ServerChild> {
  const server = await spawnScript(
    SERVER_SCRIPT,
    ["--port", "0", ...args],
    options,
  );
  const match = server.head.match(/Listening on \w+:\/\/[^ ]*:(\d+) /);
  if (!match) {
    server.child.kill("SIGKILL");
    const { stderr } = await server.finish();
    throw new Error(`server did not start: ${server.head} ${stderr}`);
  }
  return {
    child: server.child,
    port: Number(match[1]),
    output: () => server.finish(),
  };
}

/** What a proxy does with one connection. */
export interface ProxyPlan {
  /** Close both sides once this many bytes (both directions) have passed. */
  cutAfter?: number;
  /**
   * Stop forwarding server-to-client bytes after this many; later ones are
   * read and dropped until the connection ends.
   */
  holdToClientAfter?: number;
  /** The same for client-to-server bytes. */
  holdToServerAfter?: number;
}

/** A TCP proxy to a local port. */
export interface TestProxy {
  /** The proxy's port. */
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops accepting, closes every connection and waits for the pumps. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a proxy to `127.0.0.1:targetPort`; `plan(n)` decides what happens
 * to the n-th connection (0-based).
 */
export function startProxy(
  targetPort: number,
  plan: (index: number) => ProxyPlan,
): TestProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const sessions = new Set<Promise<void>>();
  const enders = new Set<() => void>();
  let connections = 0;
  function close(conn: Deno.Conn): void {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    open.delete(conn);
  }
  async function session(client: Deno.Conn, rules: ProxyPlan): Promise<void> {
    open.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      close(client);
      return;
    }
    open.add(server);
    let total = 0;
    let cut = false;
    let end = () => {};
    const ended = new Promise<void>((resolve) => end = resolve);
    enders.add(end);
    const budget = rules.cutAfter ?? Infinity;
    async function pump(
      from: Deno.Conn,
      to: Deno.Conn,
      holdAfter: number,
    ): Promise<void> {
      const buffer = new Uint8Array(64 * 1024);
      let moved = 0;
      try {
        while (!cut) {
          const room = Math.min(buffer.length, holdAfter - moved);
          if (room <= 0) {
            // Hold: forward nothing more, but keep reading (and dropping)
            // so that the sender's end is noticed.
            if ((await from.read(buffer)) === null) break;
            continue;
          }
          const n = await from.read(buffer.subarray(0, room));
          if (n === null) break;
          let send = n;
          if (total + n >= budget) {
            send = Math.max(0, budget - total);
            cut = true;
          }
          total += send;
          moved += send;
          let at = 0;
          while (at < send) at += await to.write(buffer.subarray(at, send));
        }
      } catch {
        // A side closed.
      }
      cut = true;
    }
    const pumps = [
      pump(client, server, rules.holdToServerAfter ?? Infinity),
      pump(server, client, rules.holdToClientAfter ?? Infinity),
    ];
    await Promise.race([...pumps, ended]);
    close(client);
    close(server);
    end();
    enders.delete(end);
    await Promise.all(pumps);
  }
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const rules = plan(connections++);
        const task: Promise<void> = session(conn, rules).finally(() =>
          sessions.delete(task)
        );
        sessions.add(task);
      }
    } catch {
      // Listener closed.
    }
  })();
  return {
    port: listener.addr.port,
    get connections() {
      return connections;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      listener.close();
      await accepting;
      for (const end of enders) end();
      for (const conn of [...open]) close(conn);
      while (sessions.size > 0) await Promise.allSettled([...sessions]);
    },
  };
}
