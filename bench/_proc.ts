/**
 * Child-process helpers for the benchmark: timed client runs, long-running
 * servers that are ready when they print a line or listen on a port, peak
 * memory from `/proc`, free ports, and a registry that kills every server
 * still alive when the benchmark ends.
 *
 * @module
 */

/** Every server started and not yet stopped; `stopAll()` ends them. */
const LIVE = new Set<ServerProcess>();

/** How much of a child's stderr is kept for error messages. */
const STDERR_KEEP_BYTES = 16 * 1024;

/** Options for {@linkcode runTimed}. */
export interface RunOptions {
  /** Working folder of the child. @default {Deno.cwd()} */
  cwd?: string;
  /** Text written to the child's stdin, which is then closed. */
  stdin?: string;
  /** Kill the child (SIGKILL) after this long. @default {120000} */
  timeoutMs?: number;
  /** Keep stdout (e.g. JSON from a helper). @default {false} */
  captureStdout?: boolean;
  /**
   * Measure the child's peak RSS with `/usr/bin/time -f %M` when this path
   * to GNU time is given, else by polling `/proc/PID/status`.
   */
  peakRss?: { time?: string; file: string } | false;
}

/** What a timed run produced. */
export interface RunResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  /** Wall time from spawn to exit, in seconds. */
  seconds: number;
  /** The last part of stderr, as text. */
  stderr: string;
  /** Stdout as text when `captureStdout` was set, else `""`. */
  stdout: string;
  /** True when the child was killed for running past its timeout. */
  timedOut: boolean;
  /** Peak resident set size in kB, when asked for and known. */
  peakRssKb?: number;
}

/**
 * Runs a program to completion and times it from spawn to exit.
 *
 * @param cmd The program.
 * @param args Its arguments.
 * @param options Working folder, stdin text, timeout, capture.
 * @returns Exit code, wall seconds, the tail of stderr.
 * @throws {Deno.errors.NotFound} If the program does not exist.
 *
 * @example Time `true`
 * ```ts ignore
 * import assert from "node:assert/strict";
 * const r = await runTimed("true", []);
 * assert(r.code === 0);
 * ```
 */
export async function runTimed(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const rss = options.peakRss;
  let program = cmd;
  let argv = [...args];
  if (rss && rss.time) {
    program = rss.time;
    argv = ["-f", "%M", "-o", rss.file, cmd, ...args];
  }
  const started = performance.now();
  const child = new Deno.Command(program, {
    args: argv,
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: options.captureStdout ? "piped" : "null",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(child.pid);
  }, options.timeoutMs ?? 120_000);
  let polled: Promise<number | undefined> | undefined;
  const done = { value: false };
  if (rss && !rss.time) polled = pollPeakRss(child.pid, done);
  try {
    const stdinWrite = options.stdin === undefined
      ? Promise.resolve()
      : writeAndClose(child.stdin, options.stdin);
    const stdout = options.captureStdout
      ? new Response(child.stdout).text()
      : Promise.resolve("");
    const stderr = readTail(child.stderr);
    const [status, out, err] = await Promise.all([
      child.status,
      stdout,
      stderr,
      stdinWrite,
    ]);
    const seconds = (performance.now() - started) / 1000;
    done.value = true;
    let peakRssKb: number | undefined;
    if (rss && rss.time) {
      peakRssKb = await readTimeOutput(rss.file);
    } else if (polled) {
      peakRssKb = await polled;
    }
    const code = status.signal
      ? 128 + signalNumber(status.signal)
      : status.code;
    return { code, seconds, stderr: err, stdout: out, timedOut, peakRssKb };
  } finally {
    done.value = true;
    clearTimeout(timer);
  }
}

/**
 * SIGKILLs a process and its direct children (GNU time's child, when the
 * client was wrapped), read from `/proc/PID/task/PID/children`.
 */
function killTree(pid: number): void {
  let children: number[] = [];
  try {
    children = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`)
      .trim().split(/\s+/).filter((s) => s).map(Number);
  } catch {
    // gone, or no /proc
  }
  for (const id of [...children, pid]) {
    try {
      Deno.kill(id, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function writeAndClose(
  stream: WritableStream<Uint8Array>,
  text: string,
): Promise<void> {
  const writer = stream.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // the child may exit without reading its input
  }
}

async function readTail(stream: ReadableStream<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    kept += chunk.length;
    while (kept - chunks[0].length > STDERR_KEEP_BYTES) {
      kept -= chunks.shift()!.length;
    }
  }
  const all = new Uint8Array(kept);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(all);
}

async function readTimeOutput(file: string): Promise<number | undefined> {
  try {
    const text = await Deno.readTextFile(file);
    const lines = text.trim().split("\n");
    const kb = Number(lines[lines.length - 1]);
    return Number.isFinite(kb) && kb > 0 ? kb : undefined;
  } catch {
    return undefined;
  }
}

async function pollPeakRss(
  pid: number,
  done: { value: boolean },
): Promise<number | undefined> {
  let peak: number | undefined;
  while (!done.value) {
    const kb = await readStatusKb(pid, "VmHWM");
    if (kb === undefined) break;
    peak = Math.max(peak ?? 0, kb);
    await delay(20);
  }
  return peak;
}

function signalNumber(signal: Deno.Signal): number {
  const numbers: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGPIPE: 13,
    SIGTERM: 15,
  };
  return numbers[signal] ?? 0;
}

/**
 * Reads one `kB` field (`VmHWM`, `VmRSS`) from `/proc/PID/status`.
 *
 * @param pid Process id.
 * @param field Field name.
 * @returns The value in kB, or `undefined` when the process is gone.
 *
 * @example
 * ```ts ignore
 * const kb = await readStatusKb(Deno.pid, "VmHWM");
 * ```
 */
export async function readStatusKb(
  pid: number,
  field: string,
): Promise<number | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`/proc/${pid}/status`);
  } catch {
    return undefined;
  }
  const match = text.match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m"));
  return match ? Number(match[1]) : undefined;
}

/** How a server announces that it is ready. */
export type Readiness =
  | { line: RegExp }
  | { port: number };

/** Options for {@linkcode startServer}. */
export interface ServerOptions {
  /** Working folder. */
  cwd?: string;
  /** Give up waiting after this long. @default {15000} */
  readyTimeoutMs?: number;
}

/** A running server. */
export interface ServerProcess {
  /** Short name for messages. */
  readonly name: string;
  /** Process id. */
  readonly pid: number;
  /** Port the server listens on. */
  readonly port: number;
  /** Peak RSS so far, from `/proc/PID/status` VmHWM, in kB. */
  peakRssKb(): Promise<number | undefined>;
  /** The tail of the server's stderr so far. */
  stderr(): string;
  /**
   * Stops the server (SIGTERM, then SIGKILL after 3 s) and waits for it.
   * Returns its peak RSS in kB read just before the signal.
   */
  stop(): Promise<number | undefined>;
}

/**
 * Starts a long-running server and waits until it is ready: either it
 * printed a line matching `ready.line` (whose `:PORT` is taken as its port),
 * or a socket listens on `127.0.0.1:ready.port` (read from `/proc/net/tcp`,
 * so no probe connection is used up).
 *
 * @param name Short name for messages.
 * @param cmd The program.
 * @param args Its arguments.
 * @param ready How to tell that it is ready.
 * @param options Working folder, timeout.
 * @returns The running server; stop it with `stop()`.
 * @throws {Error} If it exits or does not become ready in time.
 *
 * @example
 * ```ts ignore
 * const server = await startServer("http", "python3", ["-m", "http.server", "8000"], { port: 8000 });
 * await server.stop();
 * ```
 */
export async function startServer(
  name: string,
  cmd: string,
  args: readonly string[],
  ready: Readiness,
  options: ServerOptions = {},
): Promise<ServerProcess> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderrTail = "";
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderrTail = (stderrTail + decoder.decode(chunk, { stream: true }))
        .slice(-STDERR_KEEP_BYTES);
    }
  })();
  let resolveLine: (port: number) => void = () => {};
  const lineSeen = new Promise<number>((resolve) => resolveLine = resolve);
  const stdoutDone = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    let seen = false;
    for await (const chunk of child.stdout) {
      if (seen || !("line" in ready)) continue;
      pending += decoder.decode(chunk, { stream: true });
      const match = pending.match(ready.line);
      if (match) {
        const port = Number(match[0].match(/:(\d+)$/)?.[1] ?? NaN);
        seen = true;
        pending = "";
        resolveLine(port);
      }
      if (pending.length > 65536) pending = pending.slice(-4096);
    }
  })();
  let exited = false;
  const statusPromise = child.status.then((status) => {
    exited = true;
    return status;
  });
  let stopping: Promise<number | undefined> | undefined;
  let port = "port" in ready ? ready.port : NaN;
  const server: ServerProcess = {
    name,
    pid: child.pid,
    get port() {
      return port;
    },
    peakRssKb: () => readStatusKb(child.pid, "VmHWM"),
    stderr: () => stderrTail,
    stop() {
      stopping ??= (async () => {
        const peak = await readStatusKb(child.pid, "VmHWM");
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch {
            // already gone
          }
        }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // already gone
          }
        }, 3000);
        try {
          await statusPromise;
          await Promise.all([stderrDone, stdoutDone]);
        } finally {
          clearTimeout(timer);
          LIVE.delete(server);
        }
        return peak;
      })();
      return stopping;
    },
  };
  LIVE.add(server);
  const deadline = performance.now() + (options.readyTimeoutMs ?? 15_000);
  try {
    if ("line" in ready) {
      const timeout = new Promise<"timeout">((resolve) => {
        const timer = setTimeout(
          () => resolve("timeout"),
          options.readyTimeoutMs ?? 15_000,
        );
        statusPromise.finally(() => clearTimeout(timer));
        lineSeen.finally(() => clearTimeout(timer));
      });
      const first = await Promise.race([
        lineSeen,
        statusPromise.then(() => "exited" as const),
        timeout,
      ]);
      if (first === "exited" || first === "timeout") {
        throw new Error(
          `${name} ${
            first === "exited" ? "exited" : "did not print its address"
          }: ${lastLine(stderrTail) || "no output"}`,
        );
      }
      port = first;
      if (!Number.isInteger(port)) {
        throw new Error(`${name} printed no port`);
      }
    } else {
      while (!(await isListening(ready.port))) {
        if (exited) {
          await stderrDone;
          throw new Error(
            `${name} exited: ${lastLine(stderrTail) || "no output"}`,
          );
        }
        if (performance.now() > deadline) {
          throw new Error(`${name} did not listen on port ${ready.port}`);
        }
        await delay(10);
      }
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/**
 * Stops every server started by {@linkcode startServer} and still running.
 *
 * @returns When all have exited.
 *
 * @example
 * ```ts ignore
 * try { ... } finally { await stopAll(); }
 * ```
 */
export async function stopAll(): Promise<void> {
  await Promise.all([...LIVE].map((server) => server.stop()));
}

/**
 * The message of anything thrown, for a "failed" row or note.
 *
 * @param error What was caught.
 * @returns Its `message` if it is an `Error`, else its string form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reasonOf } from "./_proc.ts";
 * assert(reasonOf(new Error("boom")) === "boom");
 * assert(reasonOf("plain") === "plain");
 * ```
 */
export function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The last non-empty line of a text, trimmed.
 *
 * @param text Any text.
 * @returns The line, or `""`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lastLine } from "./_proc.ts";
 * assert(lastLine("a\nb\n\n") === "b");
 * ```
 */
export function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l);
  return lines.length ? lines[lines.length - 1] : "";
}

/**
 * Sleeps. Only used to poll `/proc` (no event tells when a foreign program
 * starts listening or how much memory it holds).
 *
 * @param ms Milliseconds.
 * @returns After that long.
 *
 * @example
 * ```ts
 * import { delay } from "./_proc.ts";
 * await delay(1);
 * ```
 */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Local ports of all IPv4 and IPv6 TCP sockets, with their states. */
async function tcpSockets(): Promise<{ port: number; state: string }[]> {
  const sockets: { port: number; state: string }[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4) continue;
      const port = parseInt(fields[1].split(":")[1], 16);
      sockets.push({ port, state: fields[3] });
    }
  }
  return sockets;
}

/**
 * Tells whether some socket listens on a TCP port (state `0A` in
 * `/proc/net/tcp`).
 *
 * @param port The port.
 * @returns True when a listener is there.
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * assert(!(await isListening(1)));
 * ```
 */
export async function isListening(port: number): Promise<boolean> {
  const sockets = await tcpSockets();
  if (sockets.length > 0) {
    return sockets.some((s) => s.port === port && s.state === "0A");
  }
  // /proc unreadable (Deno lets only -A read it): probe with a connection.
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds a free loopback TCP port that no socket uses in any state, so that
 * programs binding without `SO_REUSEADDR` (the classic server) can take it
 * even though earlier connections left sockets in `TIME_WAIT` elsewhere.
 *
 * @returns The port.
 *
 * @example
 * ```ts ignore
 * const port = await freePort();
 * ```
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    if (!(await tcpSockets()).some((s) => s.port === port)) return port;
  }
  throw new Error("No free port found");
}
