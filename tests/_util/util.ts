/**
 * Generic test helpers shared by every test file: temp folders, bytes,
 * seeded pseudo-random numbers, running the scripts as child processes,
 * checking for optional commands, asserting a {@linkcode FerryError}, and a
 * TCP proxy that can watch or change the bytes it forwards.
 *
 * Helpers for one role live beside it: `tests/_util/server.ts` (a served temp
 * folder, a raw protocol client), `tests/_util/client.ts` (the classic Python
 * server, an in-test ferry server), `tests/_util/security.ts` (TLS material,
 * a capturing proxy), `tests/_util/faults.ts` (cutting and holding proxies,
 * bounded waits) and `tests/_util/cut_proxy.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { digestOf } from "../../_common/digest.ts";
import type { DigestAlgorithm } from "../../protocol.ts";
import { fileURLToPath } from "node:url";
import { FerryError } from "../../errors.ts";

/** Path of the server script, for CLI tests. */
export const SERVER_SCRIPT: string = fileURLToPath(
  new URL("../../server.ts", import.meta.url),
);

/** Path of the client script, for CLI tests. */
export const CLIENT_SCRIPT: string = fileURLToPath(
  new URL("../../client.ts", import.meta.url),
);

const decoder = new TextDecoder();

// ------------------------------------------------------------ files, bytes

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

/** Everything `conn` receives until the peer closes it (or resets it). */
export async function readUntilClosed(conn: Deno.Conn): Promise<Uint8Array> {
  const received: number[] = [];
  const buffer = new Uint8Array(1024);
  while (true) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return Uint8Array.from(received);
    received.push(...buffer.subarray(0, n));
  }
}

/** Whether a path exists (a dangling link counts). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** `n` random bytes (not reproducible; see {@linkcode Prng} for that). */
export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  const step = 65536;
  for (let at = 0; at < n; at += step) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(n, at + step)));
  }
  return bytes;
}

/** Byte equality, for a short message instead of a giant diff. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Concatenates byte chunks. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Digest of `data` (bytes, or a string as UTF-8) in `algorithm`, as
 * lowercase hex: what a `TransferResult` reports as `digest`.
 */
export async function digestHex(
  data: Uint8Array | string,
  algorithm: DigestAlgorithm = "xxh3-128",
): Promise<string> {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  return Array.from(
    await digestOf(algorithm, bytes),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}

/** SHA-256 of `data` (bytes, or a string as UTF-8), as lowercase hex. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

// ------------------------------------------------------ seeded randomness

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
 * A seeded source of integers in `[0, limit)` ({@linkcode Prng}'s `int`), so
 * that a failing case can be replayed.
 */
export function seededRandom(seed: number): (limit: number) => number {
  const prng = new Prng(seed);
  return (limit) => prng.int(limit);
}

/** A seeded xorshift32 sequence of unsigned 32-bit integers (fast, for bulk bytes). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>>= 0;
  };
}

// ------------------------------------------------------------ assertions

/**
 * Asserts that `error` is a {@linkcode FerryError} with `code` (or one of
 * `code`, given a list) and, given `pattern`, a matching message.
 */
export function assertFerryError(
  error: unknown,
  code: string | readonly string[],
  pattern?: RegExp,
): asserts error is FerryError {
  assert.ok(error instanceof FerryError, `expected FerryError, got ${error}`);
  if (typeof code === "string") assert.equal(error.code, code, error.message);
  else assert.ok(code.includes(error.code), `${error.code}: ${error.message}`);
  if (pattern) assert.match(error.message, pattern);
}

/**
 * Awaits `promise`, asserts it rejected as {@linkcode assertFerryError}
 * describes, and returns the error.
 */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: string | readonly string[],
  pattern?: RegExp,
): Promise<FerryError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assertFerryError(caught, code, pattern);
  return caught;
}

// ----------------------------------------------------- commands, scripts

/** Whether `command` runs and exits 0 with `args` (say `--version`). */
export async function hasCommand(
  command: string,
  args: string[],
): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, {
      args,
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** Whether `python3` can be run. */
export function hasPython(): Promise<boolean> {
  return hasCommand("python3", ["--version"]);
}

/**
 * The folder of the lab's classic programs, `../shared/seed` beside the
 * repository (CI has it; a bare clone does not).
 */
export const SEED_DIR: string =
  new URL("../../../shared/seed/", import.meta.url)
    .pathname;

/**
 * Why the real classic programs cannot run here (`python3` missing, or no
 * `../shared/seed` beside the repository), or `undefined` when they can.
 * Tests that need them are ignored with this reason in their name.
 */
export async function classicSeedProblem(): Promise<string | undefined> {
  if (!(await hasPython())) return "python3 is missing";
  try {
    await Deno.stat(`${SEED_DIR}classic_server.py`);
    await Deno.stat(`${SEED_DIR}classic_client.py`);
  } catch {
    return "../shared/seed is absent";
  }
  return undefined;
}

/** How to run a script. */
export interface ScriptOptions {
  /** Working folder of the child. */
  cwd?: string;
  /** Extra environment variables (`NO_COLOR=1` is always set). */
  env?: Record<string, string>;
  /** Kills the child when aborted. */
  signal?: AbortSignal;
}

/** What a finished script run produced. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
  /** Standard output, as bytes. */
  stdoutBytes: Uint8Array;
}

/** `deno run -A script ...args` with no stdin and piped stdout and stderr. */
export function scriptCommand(
  script: string,
  args: string[],
  options: ScriptOptions = {},
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
    signal: options.signal,
  });
}

/** Runs `deno run -A script ...args` to its end. */
export async function runScript(
  script: string,
  args: string[],
  options: ScriptOptions = {},
): Promise<CliResult> {
  const { code, stdout, stderr } = await scriptCommand(script, args, options)
    .output();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
    stdoutBytes: stdout,
  };
}

/** Whether util-linux `script` can give a child a terminal (Linux only). */
export function hasTerminalScript(): Promise<boolean> {
  if (Deno.build.os !== "linux") return Promise.resolve(false);
  return hasCommand("script", ["--version"]);
}

/**
 * `deno run -A script ...args` under util-linux `script`, so that the child
 * has a terminal; everything it prints arrives on stdout.
 */
export function terminalCommand(
  script: string,
  args: string[],
  options: { cwd?: string; stdin?: "piped" | "null" } = {},
): Deno.Command {
  const line = [Deno.execPath(), "run", "-A", script, ...args]
    .map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(" ");
  return new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    cwd: options.cwd,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

/** A script running as a child process, after its first line of output. */
export interface ScriptChild {
  /** The child. */
  child: Deno.ChildProcess;
  /**
   * Standard output read up to and including the first newline (it may hold
   * more when it arrived in the same read), or all of it when the child
   * ended before printing a newline.
   */
  head: string;
  /** Reads stdout to its end and waits for the exit; `stdout` is what follows the first line. */
  finish(): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * Spawns `deno run -A script ...args` and waits for its first line of
 * output. With `shell`, the command runs as `bash -c "<shell>; exec deno run
 * ..."` (to set `ulimit`, say).
 */
export async function spawnScript(
  script: string,
  args: string[],
  options: ScriptOptions & { shell?: string } = {},
): Promise<ScriptChild> {
  const command = options.shell === undefined
    ? scriptCommand(script, args, options)
    : new Deno.Command("bash", {
      args: [
        "-c",
        `${options.shell}; exec "$0" "$@"`,
        Deno.execPath(),
        "run",
        "-A",
        script,
        ...args,
      ],
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    });
  const child = command.spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let head = "";
  while (!head.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    head += value;
  }
  let finished:
    | Promise<{ code: number; stdout: string; stderr: string }>
    | undefined;
  return {
    child,
    head,
    finish() {
      finished ??= (async () => {
        let rest = head.includes("\n")
          ? head.slice(head.indexOf("\n") + 1)
          : "";
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          rest += value;
        }
        const status = await child.status;
        return { code: status.code, stdout: rest, stderr: await stderr };
      })();
      return finished;
    },
  };
}

// ------------------------------------------------------------------ proxy

/** One direction of a proxied connection. */
export type ProxyDirection = "toClient" | "toServer";

/** A TCP proxy to a local port. */
export interface TapProxy {
  /** The proxy's port. */
  port: number;
  /** Stops accepting, closes every connection and waits for the pumps. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a proxy on `127.0.0.1:0` to `127.0.0.1:targetPort` that shows each
 * chunk to `tap` before forwarding it; `tap` may change the bytes in place
 * (but must copy what it keeps). `position` is the chunk's offset within its
 * direction of its connection. When either direction ends, both connections
 * close.
 */
export function startTapProxy(
  targetPort: number,
  tap: (chunk: Uint8Array, direction: ProxyDirection, position: number) => void,
): TapProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const sessions: Promise<void>[] = [];
  let disposed: Promise<void> | undefined;
  function closeQuietly(conn: Deno.Conn): void {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    conns.delete(conn);
  }
  async function pump(
    from: Deno.Conn,
    to: Deno.Conn,
    direction: ProxyDirection,
  ): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    let position = 0;
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) break;
        tap(buffer.subarray(0, n), direction, position);
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
      closeQuietly(client);
      return;
    }
    conns.add(server);
    const pumps = [
      pump(client, server, "toServer"),
      pump(server, client, "toClient"),
    ];
    await Promise.race(pumps);
    closeQuietly(client);
    closeQuietly(server);
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
    [Symbol.asyncDispose](): Promise<void> {
      disposed ??= (async () => {
        listener.close();
        await accepting;
        for (const conn of [...conns]) closeQuietly(conn);
        await Promise.all(sessions);
      })();
      return disposed;
    },
  };
}
