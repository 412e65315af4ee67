/**
 * Helpers for the client tests: temp folders, random files, free ports, the
 * real classic Python server, and running the client script.
 *
 * @module
 */

import type { ByteWriter } from "./protocol.ts";

/** Path of the client script, for CLI tests. */
export const CLIENT_SCRIPT: string = new URL("./client.ts", import.meta.url)
  .pathname;

/** Path of the lab's classic server. */
export const CLASSIC_SERVER_PY: string = new URL(
  "../shared/seed/classic_server.py",
  import.meta.url,
).pathname;

/** Runs `fn` with a fresh temp folder, removed afterwards. */
export async function withTempDir<T>(
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  const step = 65536;
  for (let at = 0; at < n; at += step) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(n, at + step)));
  }
  return bytes;
}

/** Writes a file of `n` random bytes and returns them. */
export async function writeRandomFile(
  path: string,
  n: number,
): Promise<Uint8Array> {
  const bytes = randomBytes(n);
  await Deno.writeFile(path, bytes);
  return bytes;
}

/** Byte equality with a short message instead of a giant diff. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** A port nobody listens on right now (listen on 0, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A writer that collects everything written to it. */
export class BufferWriter implements ByteWriter {
  #chunks: Uint8Array[] = [];
  #length = 0;

  write(p: Uint8Array): Promise<number> {
    this.#chunks.push(p.slice());
    this.#length += p.length;
    return Promise.resolve(p.length);
  }

  /** Everything written so far. */
  bytes(): Uint8Array {
    const all = new Uint8Array(this.#length);
    let at = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  }
}

/** Whether `python3` can be run. */
export async function hasPython(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("python3", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** A running `classic_server.py`. */
export interface PythonServer {
  port: number;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts the lab's classic server in `cwd` on a free port, with its
 * `PORT = 65432` line replaced, and waits for its "listening" line.
 */
export async function startPythonClassicServer(
  cwd: string,
): Promise<PythonServer> {
  const port = freePort();
  const code = `exec(open(${
    JSON.stringify(CLASSIC_SERVER_PY)
  }).read().replace('PORT = 65432', 'PORT = ${port}'))`;
  const child = new Deno.Command("python3", {
    args: ["-u", "-c", code],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let drained: Promise<void> = Promise.resolve();
  try {
    while (!seen.includes("listening")) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `classic_server.py exited before listening: ${await stderr}`,
        );
      }
      seen += value;
    }
    // Keep draining so the server never blocks on a full pipe.
    drained = (async () => {
      while (!(await reader.read()).done) { /* discard */ }
    })();
  } catch (error) {
    child.kill("SIGTERM");
    await reader.cancel();
    await child.status;
    await stderr;
    throw error;
  }
  return {
    port,
    async [Symbol.asyncDispose](): Promise<void> {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await drained;
      await stderr;
      await child.status;
    },
  };
}

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
}

/** Runs `deno run -A client.ts ...args`. */
export async function runClient(
  args: string[],
  options: { cwd?: string } = {},
): Promise<CliResult> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLIENT_SCRIPT, ...args],
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
    stdoutBytes: stdout,
  };
}

/** A running in-test ferry server over a temp folder. */
export interface TestFerryServer {
  /** The server's port. */
  port: number;
  /** Temp folder holding `root/` (served) and anything else a test needs. */
  dir: string;
  /** The served folder. */
  root: string;
}

/**
 * Runs `fn` with `serve()` over a fresh temp folder; stops the server with
 * its AbortController, awaits `finished` and removes the folder.
 */
export async function withFerryServer(
  options: { allowUpload?: boolean },
  fn: (server: TestFerryServer) => Promise<void>,
): Promise<void> {
  const { serve } = await import("./server.ts");
  await withTempDir(async (dir) => {
    const root = `${dir}/root`;
    await Deno.mkdir(root);
    const controller = new AbortController();
    const server = await serve({
      root,
      port: 0,
      allowUpload: options.allowUpload ?? false,
      signal: controller.signal,
    });
    try {
      await fn({ port: server.addr.port, dir, root });
    } finally {
      controller.abort();
      await server.finished;
    }
  });
}

/** A TCP proxy that flips one byte at a fixed offset of one direction. */
export interface FlippingProxy {
  /** The proxy's port. */
  port: number;
  /** Stops accepting, closes every connection and waits for the pumps. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a proxy to `127.0.0.1:targetPort` that flips (XOR 0xff) the byte
 * at stream offset `flipAt` of the `direction` side of every connection.
 */
export function startFlippingProxy(
  targetPort: number,
  direction: "toClient" | "toServer",
  flipAt: number,
): FlippingProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const sessions: Promise<void>[] = [];
  function closeAll(): void {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }
  async function pump(
    from: Deno.Conn,
    to: Deno.Conn,
    flip: boolean,
  ): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let position = 0;
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        if (flip && flipAt >= position && flipAt < position + n) {
          buffer[flipAt - position] ^= 0xff;
        }
        position += n;
        let at = 0;
        while (at < n) at += await to.write(buffer.subarray(at, n));
      }
    } catch {
      // A side closed: the session ends.
    }
  }
  async function session(client: Deno.Conn): Promise<void> {
    conns.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    } catch {
      client.close();
      conns.delete(client);
      return;
    }
    conns.add(server);
    // When either direction ends, both connections close.
    const pumps = [
      pump(client, server, direction === "toServer"),
      pump(server, client, direction === "toClient"),
    ];
    await Promise.race(pumps);
    for (const conn of [client, server]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      conns.delete(conn);
    }
    await Promise.all(pumps);
  }
  const accepting = (async () => {
    try {
      for await (const conn of listener) sessions.push(session(conn));
    } catch {
      // Listener closed.
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose](): Promise<void> {
      listener.close();
      await accepting;
      closeAll();
      await Promise.all(sessions);
    },
  };
}
