/**
 * The server's resource limits: their defaults, their checks, and the small
 * pieces that enforce them.
 *
 * - **Connections.** At most `maxConnections` at once; one more is answered
 *   `ERROR BUSY` and closed ({@linkcode BusyRefusals}).
 * - **Idle peers.** Every read and write on a connection is timed
 *   ({@linkcode trackIO}); a connection that waited longer than
 *   `idleTimeoutMs` for its peer (for the next request, for upload bytes,
 *   or for room to send download bytes) is closed by a periodic sweep.
 * - **Requests.** Path depth and upload size are checked before a request
 *   runs ({@linkcode checkRequestLimits}); frame size is the frame
 *   reader's limit; listing size is counted as entries are sent.
 * - **Write errors.** An upload's file writes go through an
 *   {@linkcode UploadSink}: the first failure (disk full, file too large,
 *   I/O error) removes the temporary file, the rest of the upload is read
 *   and dropped so that the connection stays in step, and the client gets
 *   `ERROR INTERNAL` with `Write failed: ...`.
 *
 * @module
 */

import { DEFAULT_IDLE_TIMEOUT_MS as COMMON_IDLE_TIMEOUT_MS } from "../_common/defaults.ts";
import { FerryError } from "../errors.ts";
import {
  type ByteWriter,
  encodeMessage,
  MAX_FRAME_BYTES,
  type Message,
  writeAll,
} from "../protocol.ts";

/**
 * Connections served at once unless told otherwise; one more is refused
 * with `BUSY`.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_CONNECTIONS } from "./limits.ts";
 * assert(DEFAULT_MAX_CONNECTIONS === 512);
 * ```
 */
export const DEFAULT_MAX_CONNECTIONS = 512;

/**
 * How long a connection may wait for its peer unless told otherwise, in
 * milliseconds: 60 seconds.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_IDLE_TIMEOUT_MS } from "./limits.ts";
 * assert(DEFAULT_IDLE_TIMEOUT_MS === 60_000);
 * ```
 */
export const DEFAULT_IDLE_TIMEOUT_MS: number = COMMON_IDLE_TIMEOUT_MS;

/**
 * How long a stopping server lets requests in progress finish unless told
 * otherwise, in milliseconds: 5 seconds.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DRAIN_MS } from "./limits.ts";
 * assert(DEFAULT_DRAIN_MS === 5_000);
 * ```
 */
export const DEFAULT_DRAIN_MS = 5_000;

/**
 * Most segments a request path may have unless told otherwise.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_PATH_DEPTH } from "./limits.ts";
 * assert(DEFAULT_MAX_PATH_DEPTH === 64);
 * ```
 */
export const DEFAULT_MAX_PATH_DEPTH = 64;

/**
 * Most entries one `LIST` sends unless told otherwise.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_LIST_ENTRIES } from "./limits.ts";
 * assert(DEFAULT_MAX_LIST_ENTRIES === 1_000_000);
 * ```
 */
export const DEFAULT_MAX_LIST_ENTRIES = 1_000_000;

/** Longest delay a timer can wait. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Smallest frame limit accepted: a `HELLO` with a full nonce fits. */
const MIN_FRAME_BYTES = 128;

/**
 * The limit options of `serve()`, all optional.
 *
 * @example Tighten two limits
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LimitOptions } from "./limits.ts";
 * const options: LimitOptions = { maxConnections: 64, maxUploadBytes: 1 << 30 };
 * assert(options.maxConnections === 64);
 * ```
 */
export interface LimitOptions {
  /**
   * Connections served at once; one more gets `ERROR BUSY` and is closed.
   *
   * @default {512}
   */
  maxConnections?: number;
  /**
   * Longest wait for the peer, in milliseconds: for the next request, and
   * within a request for each read of upload bytes or each write of
   * download bytes. A connection past it is closed (an upload in progress
   * is discarded).
   *
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /**
   * When the server stops, how long requests in progress may run on, in
   * milliseconds; then every connection is closed. Connections between
   * requests close at once.
   *
   * @default {5000}
   */
  drainMs?: number;
  /**
   * Largest frame payload accepted, in bytes (at most `MAX_FRAME_BYTES`);
   * a larger declared length gets `TOO_LARGE` and the connection closes.
   *
   * @default {1048576}
   */
  maxFrameBytes?: number;
  /**
   * Most `/`-separated segments in a request path; a deeper path gets
   * `TOO_LARGE` (the connection stays usable).
   *
   * @default {64}
   */
  maxPathDepth?: number;
  /**
   * Most entries one `LIST` sends; past it the listing ends with
   * `ERROR TOO_LARGE` instead of `END`.
   *
   * @default {1000000}
   */
  maxListEntries?: number;
  /**
   * Largest upload accepted, in bytes; a larger `PUT` gets `TOO_LARGE`
   * before `READY`.
   *
   * @default {Infinity} (no limit)
   */
  maxUploadBytes?: number;
}

/**
 * Every limit, with the defaults filled in.
 *
 * @example Read a limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveLimits, type ServerLimits } from "./limits.ts";
 * const limits: ServerLimits = resolveLimits({});
 * assert(limits.maxUploadBytes === Infinity);
 * ```
 */
export type ServerLimits = Required<LimitOptions>;

/**
 * Checks the limit options and fills in the defaults.
 *
 * @param options The caller's options.
 * @returns Every limit.
 * @throws {RangeError} If a limit is not a number in its range.
 *
 * @example Defaults
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveLimits } from "./limits.ts";
 * assert(resolveLimits({}).maxConnections === 512);
 * ```
 */
export function resolveLimits(options: LimitOptions): ServerLimits {
  return {
    maxConnections: count(
      options.maxConnections,
      DEFAULT_MAX_CONNECTIONS,
      "maxConnections",
      1,
    ),
    idleTimeoutMs: positive(
      options.idleTimeoutMs,
      DEFAULT_IDLE_TIMEOUT_MS,
      "idleTimeoutMs",
    ),
    drainMs: count(
      options.drainMs,
      DEFAULT_DRAIN_MS,
      "drainMs",
      0,
      MAX_TIMER_MS,
    ),
    maxFrameBytes: count(
      options.maxFrameBytes,
      MAX_FRAME_BYTES,
      "maxFrameBytes",
      MIN_FRAME_BYTES,
      MAX_FRAME_BYTES,
    ),
    maxPathDepth: count(
      options.maxPathDepth,
      DEFAULT_MAX_PATH_DEPTH,
      "maxPathDepth",
      1,
    ),
    maxListEntries: count(
      options.maxListEntries,
      DEFAULT_MAX_LIST_ENTRIES,
      "maxListEntries",
      1,
    ),
    maxUploadBytes: options.maxUploadBytes === Infinity
      ? Infinity
      : count(options.maxUploadBytes, Infinity, "maxUploadBytes", 0),
  };
}

function count(
  value: number | undefined,
  fallback: number,
  name: string,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${name} must be an integer from ${min} to ${max}: ${value}`,
    );
  }
  return value;
}

function positive(
  value: number | undefined,
  fallback: number,
  name: string,
): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number: ${value}`);
  }
  return value;
}

/**
 * Refuses a request that breaks a per-request limit, before it runs.
 *
 * @param message The request.
 * @param limits The server's limits.
 * @throws {FerryError} `TOO_LARGE` if its path is deeper than
 * `maxPathDepth` or it uploads more than `maxUploadBytes`.
 *
 * @example A deep path
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRequestLimits, resolveLimits } from "./limits.ts";
 * const limits = resolveLimits({ maxPathDepth: 2 });
 * checkRequestLimits({ type: "stat", path: "a/b" }, limits);
 * try {
 *   checkRequestLimits({ type: "stat", path: "a/b/c" }, limits);
 *   assert(false);
 * } catch (error) {
 *   assert((error as { code: string }).code === "TOO_LARGE");
 * }
 * ```
 */
export function checkRequestLimits(
  message: Message,
  limits: ServerLimits,
): void {
  if ("path" in message && message.path !== "") {
    let depth = 1;
    for (let i = 0; i < message.path.length; i++) {
      if (message.path.charCodeAt(i) === 0x2f) depth++;
    }
    if (depth > limits.maxPathDepth) {
      throw new FerryError(
        "TOO_LARGE",
        `Path deeper than ${limits.maxPathDepth} segments`,
      );
    }
  }
  if (message.type === "put" && message.size > limits.maxUploadBytes) {
    throw new FerryError(
      "TOO_LARGE",
      `Upload of ${message.size} bytes exceeds the limit of ${limits.maxUploadBytes} bytes`,
    );
  }
}

/**
 * The I/O clock of one connection: how many reads and writes are waiting
 * on the peer, and when the last one started or ended.
 *
 * @example Time a read
 * ```ts
 * import assert from "node:assert/strict";
 * import { IoActivity } from "./limits.ts";
 * const activity = new IoActivity();
 * activity.begin();
 * assert(!activity.stalled(performance.now(), 1000));
 * activity.end();
 * ```
 */
export class IoActivity {
  #pending = 0;
  #since = performance.now();

  /** Marks the start of a read or write on the connection. */
  begin(): void {
    this.#pending++;
    this.#since = performance.now();
  }

  /** Marks its end (whatever the outcome). */
  end(): void {
    this.#pending--;
    this.#since = performance.now();
  }

  /**
   * Whether a read or write has waited more than `ms` without any other
   * starting or ending.
   *
   * @param now `performance.now()`.
   * @param ms The idle timeout.
   * @returns `true` when the connection is stalled.
   */
  stalled(now: number, ms: number): boolean {
    return this.#pending > 0 && now - this.#since > ms;
  }
}

/**
 * Wraps a connection so that its reads and writes are timed by `activity`;
 * every other member is the connection's own.
 *
 * @param conn The accepted connection (TCP or TLS).
 * @param activity Its clock.
 * @returns The same connection, with timed `read` and `write`.
 *
 * @example Wrap an accepted connection
 * ```ts ignore
 * import { IoActivity, trackIO } from "./limits.ts";
 * using listener = Deno.listen({ port: 0 });
 * const conn = trackIO(await listener.accept(), new IoActivity());
 * ```
 */
export function trackIO<C extends Deno.Conn>(
  conn: C,
  activity: IoActivity,
): C {
  async function read(p: Uint8Array): Promise<number | null> {
    activity.begin();
    try {
      return await conn.read(p);
    } finally {
      activity.end();
    }
  }
  async function write(p: Uint8Array): Promise<number> {
    activity.begin();
    try {
      return await conn.write(p);
    } finally {
      activity.end();
    }
  }
  return new Proxy(conn, {
    get(target, key) {
      if (key === "read") return read;
      if (key === "write") return write;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Most refusals answered at once; further ones are closed without a word. */
const MAX_PENDING_REFUSALS = 64;
/** How long a refused peer may take to read `BUSY` and close. */
const REFUSAL_LINGER_MS = 1_000;
/** How much of a refused peer's data is read and dropped before closing. */
const REFUSAL_DRAIN_BYTES = 64 * 1024;
const BUSY_FRAME = encodeMessage({
  type: "error",
  code: "BUSY",
  message: "Server busy: too many connections, try again later",
});
/** Shared scratch space for dropped bytes: nothing in it is ever read. */
const DISCARD = new Uint8Array(16 * 1024);

/**
 * Answers connections over the limit with `ERROR BUSY`.
 *
 * The frame goes out at once, then the server's side is shut for writing
 * and whatever the peer already sent (its `HELLO`) is read and dropped until
 * it closes, for at most a second: closing a socket with unread data would
 * reset the connection and could destroy the `BUSY` before the peer reads
 * it. A classic peer cannot parse the frame: to it, the server refused
 * (its client reports that the file does not exist). At most 64 refusals
 * linger at once; beyond that a connection is closed without a word.
 *
 * @example Refuse a connection
 * ```ts ignore
 * import { BusyRefusals } from "./limits.ts";
 * const refusals = new BusyRefusals();
 * using listener = Deno.listen({ port: 0 });
 * refusals.refuse(await listener.accept());
 * refusals.closeAll();
 * await refusals.settled();
 * ```
 */
export class BusyRefusals {
  #open = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();

  /**
   * Sends `BUSY` to `conn` and closes it, in the background.
   *
   * @param conn A connection over the limit.
   */
  refuse(conn: Deno.Conn): void {
    if (this.#open.size >= MAX_PENDING_REFUSALS) {
      closeQuietly(conn);
      return;
    }
    this.#open.add(conn);
    const task: Promise<void> = this.#answer(conn).finally(() => {
      this.#open.delete(conn);
      this.#tasks.delete(task);
    });
    this.#tasks.add(task);
  }

  /** Closes every connection still being refused. */
  closeAll(): void {
    for (const conn of this.#open) closeQuietly(conn);
  }

  /**
   * Waits for every refusal to end.
   *
   * @returns A promise that settles when none is left.
   */
  async settled(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  async #answer(conn: Deno.Conn): Promise<void> {
    const timer = setTimeout(() => closeQuietly(conn), REFUSAL_LINGER_MS);
    try {
      await writeAll(conn, BUSY_FRAME);
      await conn.closeWrite();
      let dropped = 0;
      while (dropped < REFUSAL_DRAIN_BYTES) {
        const n = await conn.read(DISCARD);
        if (n === null) break;
        dropped += n;
      }
    } catch {
      // The peer left, or the linger time ran out: nothing more to say.
    } finally {
      clearTimeout(timer);
      closeQuietly(conn);
    }
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** A file that can be written and flushed: `Deno.FsFile` or `HostFile`. */
export interface SyncedWriter extends ByteWriter {
  /** Flushes the data written to disk. */
  syncData(): Promise<void>;
}

/**
 * Where an upload's bytes are written: the temporary file until a write
 * fails, then nowhere.
 *
 * After the first failed write the temporary file is removed at once (its
 * space is freed while the rest of the upload is read and dropped), and
 * {@linkcode UploadSink.check} reports the failure once the client has
 * sent everything, so the connection stays in step.
 *
 * @example Write through a sink
 * ```ts ignore
 * import { UploadSink } from "./limits.ts";
 * const file = await Deno.open("upload.part", { write: true, createNew: true });
 * const sink = new UploadSink(file, "upload.part");
 * await sink.write(new Uint8Array(10));
 * sink.check();
 * await sink.sync();
 * file.close();
 * ```
 */
export class UploadSink implements ByteWriter {
  #file: SyncedWriter;
  #path: string;
  #error: unknown = undefined;

  /**
   * Wraps an open temporary file.
   *
   * @param file The temporary file, open for writing.
   * @param path Its host path, removed when a write fails.
   */
  constructor(file: SyncedWriter, path: string) {
    this.#file = file;
    this.#path = path;
  }

  /** Whether a write has failed. */
  get failed(): boolean {
    return this.#error !== undefined;
  }

  /**
   * Writes to the file, or drops the bytes after a failure.
   *
   * @param p The bytes.
   * @returns How many were taken.
   */
  async write(p: Uint8Array): Promise<number> {
    if (this.#error === undefined) {
      try {
        return await this.#file.write(p);
      } catch (error) {
        this.#fail(error);
      }
    }
    return p.length;
  }

  /**
   * Throws if a write has failed.
   *
   * @throws {FerryError} `INTERNAL` with `Write failed: ...`.
   */
  check(): void {
    if (this.#error !== undefined) throw writeFailed(this.#error);
  }

  /**
   * Flushes the file to disk.
   *
   * @returns A promise that settles once the data is on disk.
   * @throws {FerryError} `INTERNAL` with `Write failed: ...` if it cannot
   * be (the temporary file is then removed).
   */
  async sync(): Promise<void> {
    this.check();
    try {
      await this.#file.syncData();
    } catch (error) {
      this.#fail(error);
      this.check();
    }
  }

  #fail(error: unknown): void {
    this.#error = error;
    try {
      // One unlink, synchronous so that no operation outlives the request.
      Deno.removeSync(this.#path);
    } catch {
      // Removed again (and the error ignored) when the request ends.
    }
  }
}

/** `Write failed: file too large (os error 27)`: the OS reason, no path. */
function writeFailed(error: unknown): FerryError {
  let reason = error instanceof Error ? error.message : String(error);
  // Deno appends the host path to some messages: keep it on the server.
  reason = reason.replace(/: (?:'[^']*'|"[^"]*"|\/\S*).*$/, "");
  reason = reason.charAt(0).toLowerCase() + reason.slice(1);
  return new FerryError("INTERNAL", `Write failed: ${reason}`, {
    cause: error,
  });
}

/**
 * The server command line's limit flags, for `parseArgs` (all strings,
 * checked by {@linkcode limitsFromFlags}).
 *
 * @example Parse a flag
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseArgs } from "node:util";
 * import { LIMIT_FLAGS, limitsFromFlags } from "./limits.ts";
 * const { values } = parseArgs({ args: ["--max-connections", "8"], options: LIMIT_FLAGS });
 * assert(limitsFromFlags(values).maxConnections === 8);
 * ```
 */
export const LIMIT_FLAGS = {
  "max-connections": { type: "string" },
  "idle-timeout": { type: "string" },
  "drain-seconds": { type: "string" },
  "max-upload-bytes": { type: "string" },
} as const;

/**
 * The help lines of {@linkcode LIMIT_FLAGS}, one flag a line with its
 * default.
 *
 * @example Print them
 * ```ts
 * import assert from "node:assert/strict";
 * import { LIMITS_USAGE } from "./limits.ts";
 * assert(LIMITS_USAGE.includes("--max-connections"));
 * ```
 */
export const LIMITS_USAGE: string = [
  `  --max-connections N   connections at once; more get BUSY (default: ${DEFAULT_MAX_CONNECTIONS})`,
  `  --idle-timeout SECONDS  close a connection whose peer stalls (default: ${
    DEFAULT_IDLE_TIMEOUT_MS / 1000
  })`,
  `  --drain-seconds SECONDS  on SIGINT/SIGTERM, time for running requests (default: ${
    DEFAULT_DRAIN_MS / 1000
  })`,
  "  --max-upload-bytes N  refuse larger uploads with TOO_LARGE (default: no limit)",
].join("\n");

/**
 * Turns the limit flags' values into limit options.
 *
 * @param values What `parseArgs` found for {@linkcode LIMIT_FLAGS}.
 * @returns The limits given (the others stay at their defaults).
 * @throws {RangeError} With a one-line message, for a value that is not a
 * number in range.
 *
 * @example Seconds become milliseconds
 * ```ts
 * import assert from "node:assert/strict";
 * import { limitsFromFlags } from "./limits.ts";
 * assert(limitsFromFlags({ "idle-timeout": "1.5" }).idleTimeoutMs === 1500);
 * ```
 */
export function limitsFromFlags(
  values: { [K in keyof typeof LIMIT_FLAGS]?: string },
): LimitOptions {
  const options: LimitOptions = {};
  const connections = values["max-connections"];
  if (connections !== undefined) {
    if (!/^\d+$/.test(connections) || !(Number(connections) >= 1)) {
      throw new RangeError(`bad --max-connections: ${connections}`);
    }
    options.maxConnections = Number(connections);
  }
  const idle = values["idle-timeout"];
  if (idle !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(idle) || !(Number(idle) > 0)) {
      throw new RangeError(`bad --idle-timeout: ${idle}`);
    }
    options.idleTimeoutMs = Number(idle) * 1000;
  }
  const drain = values["drain-seconds"];
  if (drain !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(drain)) {
      throw new RangeError(`bad --drain-seconds: ${drain}`);
    }
    options.drainMs = Math.round(Number(drain) * 1000);
  }
  const upload = values["max-upload-bytes"];
  if (upload !== undefined) {
    if (!/^\d+$/.test(upload) || !Number.isSafeInteger(Number(upload))) {
      throw new RangeError(`bad --max-upload-bytes: ${upload}`);
    }
    options.maxUploadBytes = Number(upload);
  }
  try {
    resolveLimits(options);
  } catch {
    throw new RangeError("a limit is out of range");
  }
  return options;
}

/**
 * Ends a connection politely: shuts the sending side (the peer reads all
 * that was sent, then the end of the stream) and reads and drops whatever
 * the peer still sends (such as pipelined requests that will not be
 * answered) until it closes. Closing a socket with unread bytes would reset
 * the connection, and a reset can destroy the last reply before the peer
 * has read it. The caller bounds the wait by closing the connection (the
 * idle sweep, the drain deadline).
 *
 * @param conn The connection.
 * @param reader Its reader (bytes it buffered are dropped first).
 * @returns A promise that settles when the peer has closed, or on error.
 *
 * @example End a session after its last reply
 * ```ts ignore
 * import { lingerClose } from "./limits.ts";
 * using listener = Deno.listen({ port: 0 });
 * const conn = await listener.accept();
 * await lingerClose(conn, conn);
 * conn.close();
 * ```
 */
export async function lingerClose(
  conn: Deno.Conn,
  reader: { read(p: Uint8Array): Promise<number | null> },
): Promise<void> {
  try {
    await conn.closeWrite();
    while ((await reader.read(DISCARD)) !== null) {
      // dropped
    }
  } catch {
    // Reset, or closed by a deadline: either way the connection is over.
  }
}
