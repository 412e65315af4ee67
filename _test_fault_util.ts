/**
 * Test helpers for limits, shutdown, fuzz and fault tests: a seeded PRNG,
 * the server script as a child process, a bounded wait on a condition, and
 * TCP proxies that cut or hold a connection.
 *
 * @module
 */

/** Path of the server script, for CLI tests. */
export const SERVER_SCRIPT: string = new URL("./server.ts", import.meta.url)
  .pathname;

/** Path of the client script, for CLI tests. */
export const CLIENT_SCRIPT: string = new URL("./client.ts", import.meta.url)
  .pathname;

/** A small seeded PRNG (mulberry32): the same seed, the same run. */
export class Prng {
  #state: number;

  /** Starts from `seed`. */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` pseudo-random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
}

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
  const denoArgs = ["run", "-A", SERVER_SCRIPT, "--port", "0", ...args];
  const command = options.shell === undefined
    ? new Deno.Command(Deno.execPath(), {
      args: denoArgs,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command("bash", {
      args: [
        "-c",
        `${options.shell}; exec "$0" "$@"`,
        Deno.execPath(),
        ...denoArgs,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  const child = command.spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const match = text.match(/Listening on \w+:\/\/[^ ]*:(\d+) /);
  if (!match) {
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    throw new Error(`server did not start: ${text} ${await stderr}`);
  }
  return {
    child,
    port: Number(match[1]),
    async output() {
      let rest = text.slice(text.indexOf("\n") + 1);
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += value;
      }
      const status = await child.status;
      return { code: status.code, stdout: rest, stderr: await stderr };
    },
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
