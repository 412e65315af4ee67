/**
 * Pieces shared by the ferry client ({@linkcode ./client.ts}) and the classic
 * client ({@linkcode ./_classic_client.ts}): option and result types, dialing
 * with readable errors, and the local side of a download (a file received
 * into `DEST.part` and renamed into place, or a caller's writer or stream).
 *
 * @module
 */

import { FerryError } from "../errors.ts";
import type { ByteWriter } from "../protocol.ts";

import {
  DEFAULT_HOSTNAME,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_PORT,
} from "../_common/defaults.ts";

export { DEFAULT_HOSTNAME, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_PORT };

/**
 * Where to connect, for {@linkcode connect} and {@linkcode classicGet}.
 *
 * @example Connect to another port
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ConnectOptions } from "../client.ts";
 * const options: ConnectOptions = { hostname: "127.0.0.1", port: 4000 };
 * assert(options.port === 4000);
 * ```
 */
export interface ConnectOptions {
  /**
   * Host name or IP address of the server.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * TCP port of the server.
   *
   * @default {65432}
   */
  port?: number;
  /**
   * Aborting it closes the connection; pending operations reject with the
   * signal's reason.
   */
  signal?: AbortSignal;
  /**
   * Shared secret for a server that requires authentication; it never
   * crosses the wire (the client answers the server's challenge). Ferry
   * protocol only: {@linkcode classicGet} refuses it.
   *
   * @default {undefined}
   */
  token?: string;
  /**
   * Connect with TLS, verifying the server's certificate against the
   * system's roots (or `caCerts`). Ferry protocol only.
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * CA certificates (PEM text) to trust instead of the system's roots;
   * giving any implies `tls`.
   *
   * @default {undefined}
   */
  caCerts?: string[];
  /**
   * Once connected, how long a read or write on the connection may wait
   * without any progress before the session is closed and the request
   * fails with `TIMEOUT`, in milliseconds; 0 waits for ever. (A server
   * hashing a very large kept prefix before it answers a resumed transfer
   * is silent meanwhile.)
   *
   * @default {60000}
   */
  idleTimeoutMs?: number;
}

/**
 * Watches a connection's reads and writes: once one has waited
 * `timeoutMs` without any read or write completing, `onTimeout` runs (it
 * closes the connection, so the pending call fails). It reads and writes
 * through to the connection, and costs a timer per `timeoutMs`, not per
 * call.
 */
export class IdleWatch {
  #conn: {
    read(p: Uint8Array): Promise<number | null>;
    write(p: Uint8Array): Promise<number>;
  };
  #timeoutMs: number;
  #onTimeout: (() => void) | undefined;
  #pending = 0;
  #since = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timedOut = false;

  /**
   * @param conn The connection.
   * @param timeoutMs The bound, in milliseconds; 0 (or less) for none.
   */
  constructor(
    conn: {
      read(p: Uint8Array): Promise<number | null>;
      write(p: Uint8Array): Promise<number>;
    },
    timeoutMs: number,
  ) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /** Whether the bound passed. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** The error for calls cut by the bound. */
  timeoutError(cause?: unknown): FerryError {
    return new FerryError(
      "TIMEOUT",
      `No data from the server for ${this.#timeoutMs / 1000} s`,
      { cause },
    );
  }

  /** Starts watching (until {@linkcode IdleWatch.stop}). */
  start(onTimeout: () => void): void {
    if (this.#timeoutMs > 0) this.#onTimeout = onTimeout;
    if (this.#pending > 0) this.#arm(this.#timeoutMs);
  }

  /** Stops watching. */
  stop(): void {
    this.#onTimeout = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Reads from the connection. */
  read(p: Uint8Array): Promise<number | null> {
    return this.#watch(this.#conn.read(p));
  }

  /** Writes to the connection. */
  write(p: Uint8Array): Promise<number> {
    return this.#watch(this.#conn.write(p));
  }

  async #watch<T>(call: Promise<T>): Promise<T> {
    this.#pending++;
    this.#since = performance.now();
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
    try {
      return await call;
    } finally {
      this.#pending--;
      this.#since = performance.now();
    }
  }

  #arm(ms: number): void {
    if (this.#onTimeout === undefined) return;
    const timer = setTimeout(() => this.#check(), ms);
    this.#timer = timer;
    // A client left open between requests must not keep a program alive.
    Deno.unrefTimer(timer);
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#pending === 0 || this.#onTimeout === undefined) return;
    const idle = performance.now() - this.#since;
    if (idle < this.#timeoutMs) {
      this.#arm(this.#timeoutMs - idle);
      return;
    }
    this.#timedOut = true;
    const onTimeout = this.#onTimeout;
    this.stop();
    onTimeout();
  }
}

/**
 * What a finished transfer reports.
 *
 * @example Print a result
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferResult } from "../client.ts";
 * const result: TransferResult = { path: "a.txt", bytes: 3, sha256: "ab", seconds: 0.1 };
 * assert(result.bytes === 3);
 * ```
 */
export interface TransferResult {
  /** Path of the file on the server (the requested name for classic gets). */
  path: string;
  /** Size of the whole file in bytes. */
  bytes: number;
  /** SHA-256 of the whole file, lowercase hex. */
  sha256: string;
  /** Wall-clock duration of the transfer, in seconds. */
  seconds: number;
  /**
   * Bytes that were already there (a kept `DEST.part`, or the server's
   * part of an upload) and were not sent again; 0 or absent when the
   * transfer started at the first byte.
   */
  resumedFrom?: number;
  /** Set when kept bytes were discarded and the transfer started over. */
  restarted?: boolean;
}

/**
 * Options of {@linkcode FerryClient.get} and {@linkcode FerryClient.put}.
 *
 * @example Overwrite and watch progress
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferOptions } from "../client.ts";
 * const options: TransferOptions = {
 *   overwrite: true,
 *   onProgress: (done, total) => console.log(`${done}/${total}`),
 * };
 * assert(options.overwrite);
 * ```
 */
export interface TransferOptions {
  /**
   * Replace an existing destination instead of failing with `EXISTS`.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * Called after each chunk with the bytes moved so far and the total; a
   * resumed transfer counts the bytes already there (it starts at
   * `offset`, see `onResume`).
   */
  onProgress?: (done: number, total: number) => void;
  /**
   * Continue an interrupted transfer instead of starting over: a download
   * to a file path continues from `DEST.part` (when `DEST.part.ferry` shows
   * it holds the start of the same version of the same file), an upload
   * from the server's part of the same upload. Downloads to a writer or a
   * stream never resume.
   *
   * @default {true}
   */
  resume?: boolean;
  /** Called once, before any byte moves, when a transfer resumes at `offset`. */
  onResume?: (offset: number, total: number) => void;
  /**
   * Called when kept bytes are discarded and the transfer starts over (at
   * most once per transfer), with the reason, such as
   * `remote file changed`.
   */
  onRestart?: (reason: string) => void;
}

/**
 * Formats `hostname:port`, with brackets around an IPv6 address.
 *
 * @param hostname Host name or address.
 * @param port Port number.
 * @returns The address for messages.
 */
export function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * Opens a TCP connection with Nagle's algorithm off.
 *
 * @param options Where to connect, and a signal.
 * @returns The connection.
 * @throws {FerryError} `CONNECTION` if the server cannot be reached; the
 * signal's reason if it is aborted.
 */
export async function dial(options: ConnectOptions): Promise<Deno.TcpConn> {
  const hostname = options.hostname ?? DEFAULT_HOSTNAME;
  const port = options.port ?? DEFAULT_PORT;
  options.signal?.throwIfAborted();
  const address = formatAddress(hostname, port);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port, transport: "tcp" });
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) {
      throw new FerryError("CONNECTION", `Connection refused: ${address}`, {
        cause: error,
      });
    }
    if (
      error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied ||
      error instanceof TypeError
    ) {
      throw error;
    }
    throw new FerryError(
      "CONNECTION",
      `Cannot connect to ${address}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  if (options.signal?.aborted) {
    conn.close();
    options.signal.throwIfAborted();
  }
  conn.setNoDelay(true);
  return conn;
}

/**
 * Marks a promise's rejection as handled and returns the promise itself.
 * `copyHashed` stops waiting for a write in flight when a read fails; the
 * write's own failure must not then surface as an unhandled rejection.
 *
 * @param promise Any promise.
 * @returns The same promise.
 */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/**
 * The message of any thrown value.
 *
 * @param error What was thrown.
 * @returns Its message.
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Lowercase hex of a digest.
 *
 * @param bytes The digest.
 * @returns Its hex form.
 */
export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/**
 * Compares two digests.
 *
 * @param a One digest.
 * @param b The other.
 * @returns Whether they are equal.
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The result of a finished transfer of a whole file.
 *
 * @param path Path of the file on the server.
 * @param bytes Size of the whole file.
 * @param digest Its SHA-256.
 * @param start When the transfer started (`performance.now()`).
 * @returns The result, timed up to now.
 */
export function transferResult(
  path: string,
  bytes: number,
  digest: Uint8Array,
  start: number,
): TransferResult {
  return {
    path,
    bytes,
    sha256: toHex(digest),
    seconds: (performance.now() - start) / 1000,
  };
}

/** A deadline on one phase of a connection, from {@linkcode guardConn}. */
export interface ConnGuard {
  /** Whether the deadline passed (and closed the connection). */
  readonly timedOut: boolean;
  /** Closes the connection (an already closed one is fine). */
  close(): void;
  /** Stops the timer and the signal listener. */
  clear(): void;
}

/**
 * Closes `conn` when `timeoutMs` pass or `signal` aborts, until cleared:
 * a pending read or write on it then fails at once.
 *
 * @param conn The connection.
 * @param timeoutMs The deadline, in milliseconds.
 * @param signal Aborting it closes the connection too.
 * @returns The guard; call `clear()` when the phase is over.
 */
export function guardConn(
  conn: { close(): void },
  timeoutMs: number,
  signal: AbortSignal | undefined,
): ConnGuard {
  let timedOut = false;
  function close(): void {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  const timer = setTimeout(() => {
    timedOut = true;
    close();
  }, timeoutMs);
  signal?.addEventListener("abort", close, { once: true });
  return {
    get timedOut(): boolean {
      return timedOut;
    },
    close,
    clear(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", close);
    },
  };
}

/**
 * The local end of a download: a writer for the bytes, then either
 * {@linkcode Receiver.commit} (the file appears whole) or
 * {@linkcode Receiver.discard}.
 */
export interface Receiver {
  /** Where the received bytes go; local write errors become `LOCAL`. */
  readonly writer: ByteWriter;
  /** Finishes a verified download (rename into place, set the mtime). */
  commit(mtime?: number): Promise<void>;
  /** Abandons a download; keeps `DEST.part` only when `keepPart` is set. */
  discard(keepPart?: boolean): Promise<void>;
}

/**
 * Prepares the local end of a download.
 *
 * A string is a file path: an existing file is refused without `overwrite`,
 * the bytes go to `DEST.part` (created or truncated) and only a committed
 * download is renamed to `DEST`. A `ByteWriter` receives the bytes as they
 * come. A `WritableStream` gets a copy of each chunk (streams may keep the
 * chunks they are given); it is neither closed nor aborted, only released.
 *
 * @param destination A local file path, a writer or a stream.
 * @param overwrite Whether an existing file may be replaced.
 * @param options `checked`: the caller has just found nothing at the file
 * path (a tree download lists each folder once, `SafeDest`), so the path is
 * not looked at again (a failed `lstat` costs tens of microseconds, most of
 * it the thrown error).
 * @returns The receiver.
 * @throws {FerryError} `EXISTS` if the file exists and `overwrite` is not
 * set, `LOCAL` if it is a folder or `DEST.part` cannot be created.
 */
export function openReceiver(
  destination: string | ByteWriter | WritableStream<Uint8Array>,
  overwrite: boolean,
  options: { checked?: boolean } = {},
): Promise<Receiver> {
  try {
    return Promise.resolve(openReceiverNow(destination, overwrite, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** {@linkcode openReceiver}, synchronously. */
function openReceiverNow(
  destination: string | ByteWriter | WritableStream<Uint8Array>,
  overwrite: boolean,
  options: { checked?: boolean },
): Receiver {
  if (typeof destination !== "string") {
    if (destination instanceof WritableStream) {
      return streamReceiver(destination);
    }
    const writer = destination;
    return {
      writer: {
        write(p: Uint8Array): Promise<number> {
          return handled(writer.write(p));
        },
      },
      commit: () => Promise.resolve(),
      discard: () => Promise.resolve(),
    };
  }
  if (destination === "") throw new TypeError("Destination must not be empty");
  // Metadata calls and small writes are synchronous: microseconds each on
  // a local disk, against tens for a hop through the blocking-call thread
  // pool, which is most of the cost of a tree of small files. Large chunks
  // are written asynchronously, so hashing overlaps the write.
  try {
    const info = options.checked ? undefined : Deno.lstatSync(destination);
    if (info?.isDirectory) {
      throw new FerryError("LOCAL", `Destination is a folder: ${destination}`);
    }
    if (info && !overwrite) {
      throw new FerryError("EXISTS", `Already exists: ${destination}`);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const part = `${destination}.part`;
  let file: Deno.FsFile;
  try {
    // A part left behind is replaced, never written through: a symbolic
    // link there is refused, and the new part is created exclusively (which
    // does not follow a link made in between).
    if (!options.checked && refuseLinkSync(part)) Deno.removeSync(part);
    file = Deno.openSync(part, { write: true, createNew: true });
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError(
      "LOCAL",
      `Cannot create ${part}: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
  let open = true;
  let writing: Promise<number> | undefined;
  async function write(p: Uint8Array): Promise<number> {
    try {
      return p.length <= SYNC_WRITE_BYTES
        ? file.writeSync(p)
        : await file.write(p);
    } catch (error) {
      throw new FerryError(
        "LOCAL",
        `Cannot write ${part}: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
  async function closeFile(): Promise<void> {
    if (open) {
      open = false;
      await writing?.catch(() => {});
      file.close();
    }
  }
  return {
    writer: {
      write(p: Uint8Array): Promise<number> {
        writing = handled(write(p));
        return writing;
      },
    },
    async commit(mtime?: number): Promise<void> {
      try {
        if (mtime !== undefined) {
          const time = new Date(mtime);
          file.utimeSync(time, time);
        }
        await closeFile();
        Deno.renameSync(part, destination);
      } catch (error) {
        await closeFile();
        await Deno.remove(part).catch(() => {});
        throw new FerryError(
          "LOCAL",
          `Cannot move ${part} to ${destination}: ${messageOf(error)}`,
          { cause: error },
        );
      }
    },
    async discard(keepPart = false): Promise<void> {
      await closeFile();
      if (!keepPart) await Deno.remove(part).catch(() => {});
    },
  };
}

/**
 * Refuses to write through `path`: a symbolic link there is `FORBIDDEN`,
 * anything else but a regular file is `LOCAL`.
 *
 * @param path A local path the client is about to write.
 * @returns Whether a regular file is there.
 * @throws {FerryError} `FORBIDDEN` for a symbolic link, `LOCAL` for a
 * folder or other non-file, or a path that cannot be looked at.
 */
export function refuseLinkSync(path: string): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new FerryError("LOCAL", `Cannot read ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (info.isSymlink) {
    throw new FerryError(
      "FORBIDDEN",
      `Refused to write through a symbolic link: ${path}`,
    );
  }
  if (!info.isFile) throw new FerryError("LOCAL", `Not a file: ${path}`);
  return true;
}

/** Largest chunk written to a local file synchronously: 64 KiB. */
const SYNC_WRITE_BYTES = 64 * 1024;

function streamReceiver(stream: WritableStream<Uint8Array>): Receiver {
  const writer = stream.getWriter();
  let locked = true;
  function release(): void {
    if (locked) {
      locked = false;
      writer.releaseLock();
    }
  }
  async function write(p: Uint8Array): Promise<number> {
    try {
      // The stream may hold on to the chunk; the bulk buffer is reused.
      await writer.write(p.slice());
    } catch (error) {
      throw new FerryError(
        "LOCAL",
        `Cannot write to the stream: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return p.length;
  }
  return {
    writer: {
      write(p: Uint8Array): Promise<number> {
        return handled(write(p));
      },
    },
    commit(): Promise<void> {
      release();
      return Promise.resolve();
    },
    discard(): Promise<void> {
      release();
      return Promise.resolve();
    },
  };
}
