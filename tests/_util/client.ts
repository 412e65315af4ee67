/**
 * Helpers for the client tests: random files, free ports, the real classic
 * Python server, an in-test ferry server, running the client script, and a
 * proxy that flips one byte. Generic helpers are in `tests/_util/util.ts`.
 *
 * @module
 */

import type { ByteWriter } from "../../protocol.ts";
import {
  connect,
  type FerryClient,
  FerryError,
  type TransferResult,
} from "../../client.ts";
import {
  CLIENT_SCRIPT,
  type CliResult,
  concat,
  randomBytes,
  runScript,
  SEED_DIR,
  startTapProxy,
  type TapProxy,
  withTempDir,
} from "./util.ts";

/** Path of the lab's classic server. */
export const CLASSIC_SERVER_PY: string = `${SEED_DIR}classic_server.py`;

/** Writes a file of `n` random bytes and returns them. */
export async function writeRandomFile(
  path: string,
  n: number,
): Promise<Uint8Array> {
  const bytes = randomBytes(n);
  await Deno.writeFile(path, bytes);
  return bytes;
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

  write(p: Uint8Array): Promise<number> {
    this.#chunks.push(p.slice());
    return Promise.resolve(p.length);
  }

  /** Everything written so far. */
  bytes(): Uint8Array {
    return concat(this.#chunks);
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

/** Runs `deno run -A client.ts ...args`. */
export function runClient(
  args: string[],
  options: { cwd?: string } = {},
): Promise<CliResult> {
  return runScript(CLIENT_SCRIPT, args, options);
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
  const { serve } = await import("../../server.ts");
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

/**
 * Starts a proxy to `127.0.0.1:targetPort` that flips (XOR 0xff) the byte
 * at stream offset `flipAt` of the `direction` side of every connection.
 */
export function startFlippingProxy(
  targetPort: number,
  direction: "toClient" | "toServer",
  flipAt: number,
): TapProxy {
  return startTapProxy(targetPort, (chunk, side, position) => {
    if (side === direction && flipAt >= position) {
      if (flipAt < position + chunk.length) chunk[flipAt - position] ^= 0xff;
    }
  });
}

/**
 * Runs one transfer attempt on a fresh connection to `port`; a cut comes
 * back as its error.
 */
export async function attempt(
  port: number,
  transfer: (client: FerryClient) => Promise<TransferResult>,
): Promise<TransferResult | FerryError> {
  try {
    await using client = await connect({ port });
    return await transfer(client);
  } catch (error) {
    if (error instanceof FerryError) return error;
    throw error;
  }
}
