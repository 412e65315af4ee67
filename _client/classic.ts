/**
 * A client for the classic protocol of the lab programs in `seed/`
 * (`classic_server.py`), written so that it never saves a wrong file.
 *
 * The classic protocol has no framing:
 *
 * 1. The client connects and sends the file name as raw UTF-8 bytes.
 * 2. The server answers `NOT_EXISTS`, or `EXISTS` followed (in a second send)
 *    by the size as ASCII decimal digits.
 * 3. The client answers `READY`; the server sends exactly `size` raw bytes
 *    and closes the connection.
 *
 * TCP may split or join these sends in any way, so {@linkcode classicGet}
 * parses the reply as a stream of bytes rather than one read per message:
 *
 * - Bytes are accumulated until they start with `NOT_EXISTS` (the file is
 *   missing: `NOT_FOUND`) or with `EXISTS`; anything else is a `PROTOCOL`
 *   error as soon as it can no longer become one of the two.
 * - After `EXISTS` only digits may follow. The classic server sends nothing
 *   more until it receives `READY`, so the size is complete once at least one
 *   digit has arrived and then no byte arrives for
 *   {@linkcode CLASSIC_SIZE_QUIET_MS} milliseconds (or the server closes the
 *   connection). A non-digit, more than {@linkcode CLASSIC_MAX_SIZE_DIGITS}
 *   digits or a size above `Number.MAX_SAFE_INTEGER` is a `PROTOCOL` error.
 * - The whole wait for the reply, from sending the name to the end of the
 *   size, is bounded by `timeoutMs` ({@linkcode CLASSIC_TIMEOUT_MS} by
 *   default): a server that stays silent fails with `TIMEOUT`.
 * - Exactly `size` bytes must follow `READY`, and then the server must
 *   close (within {@linkcode CLASSIC_CLOSE_WAIT_MS}). Fewer bytes before
 *   the connection ends is a `CONNECTION` error; any byte beyond them before
 *   the close, however late, is a `PROTOCOL` error; no close is a
 *   `TIMEOUT`. In every case no file is left behind. This is also what
 *   catches a size decided too early: a server that sends its digits
 *   slower than {@linkcode CLASSIC_SIZE_QUIET_MS} apart would have the rest
 *   of its digits and its whole file arrive as bytes past a too-small size.
 *
 * @module
 */

import { safeJson } from "../_common/escape.ts";
import type { ConnectOptions, TransferResult } from "./types.ts";
import { dial } from "./dial.ts";
import { messageOf } from "../_common/text.ts";
import type { Receiver } from "./receiver.ts";
import { toHex } from "../_common/bytes.ts";
import { FerryError } from "../errors.ts";
import { type ByteReader, type ByteWriter, writeAll } from "../protocol.ts";

/**
 * How long the size must be followed by silence, in milliseconds, before the
 * classic client takes it as complete.
 *
 * @example Read the rule
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_SIZE_QUIET_MS } from "../client.ts";
 * assert(CLASSIC_SIZE_QUIET_MS === 200);
 * ```
 */
export const CLASSIC_SIZE_QUIET_MS = 200;

/**
 * How long, in milliseconds, the classic client waits after the announced
 * bytes for the server to close: a byte that comes first, or no close at
 * all, keeps nothing.
 *
 * @example Read the rule
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_CLOSE_WAIT_MS } from "../client.ts";
 * assert(CLASSIC_CLOSE_WAIT_MS === 5_000);
 * ```
 */
export const CLASSIC_CLOSE_WAIT_MS = 5_000;

/**
 * Default bound on the whole wait for a classic server's reply, in
 * milliseconds.
 *
 * @example Read the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_TIMEOUT_MS } from "../client.ts";
 * assert(CLASSIC_TIMEOUT_MS === 10_000);
 * ```
 */
export const CLASSIC_TIMEOUT_MS = 10_000;

/**
 * Most digits a classic size may have.
 *
 * @example Read the limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_MAX_SIZE_DIGITS } from "../client.ts";
 * assert(CLASSIC_MAX_SIZE_DIGITS === 20);
 * ```
 */
export const CLASSIC_MAX_SIZE_DIGITS = 20;

/**
 * Longest file name the classic server can receive (it reads the name with
 * one `recv(1024)`), in UTF-8 bytes.
 *
 * @example Check a name
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_MAX_NAME_BYTES } from "../client.ts";
 * assert(new TextEncoder().encode("notes.txt").length <= CLASSIC_MAX_NAME_BYTES);
 * ```
 */
export const CLASSIC_MAX_NAME_BYTES = 1024;

/**
 * Options of {@linkcode classicGet}.
 *
 * @example Fetch with a shorter timeout
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClassicGetOptions } from "../client.ts";
 * const options: ClassicGetOptions = { port: 65432, overwrite: true, timeoutMs: 2000 };
 * assert(options.timeoutMs === 2000);
 * ```
 */
export interface ClassicGetOptions extends ConnectOptions {
  /**
   * Replace an existing destination file instead of failing with `EXISTS`.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * Bound on the wait for the server's reply (up to the end of the size),
   * in milliseconds.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /** Called after each chunk with the bytes received so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

const encoder = new TextEncoder();
const EXISTS = encoder.encode("EXISTS");
const NOT_EXISTS = encoder.encode("NOT_EXISTS");
const READY = encoder.encode("READY");
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const HEADER_BUFFER_BYTES = 64;

/**
 * Downloads one file from a classic server (the lab's `classic_server.py`, or
 * a ferry server, which answers classic clients too).
 *
 * With a path as destination the bytes go to `DEST.part`, which is renamed to
 * `DEST` only once exactly the announced number of bytes has arrived; on any
 * failure it is removed. The classic protocol carries no checksum: the
 * SHA-256 in the result is computed over the bytes received. With a
 * `ByteWriter` the bytes are written as they come, so a failure may leave
 * part of the file written there.
 *
 * @param name File name as the server should look it up.
 * @param destination Local file path, or a writer such as `Deno.stdout`.
 * @param options Where to connect, overwrite, timeout, progress.
 * @returns What was transferred.
 * @throws {FerryError} `EXISTS` if the destination exists and `overwrite`
 * is not set (checked before connecting), `NOT_FOUND` if the server answers
 * `NOT_EXISTS`, `PROTOCOL` for a malformed reply, `TIMEOUT` if the reply
 * does not come in time, `CONNECTION` if the connection fails or ends before
 * all bytes arrived, `LOCAL` if the destination cannot be written,
 * `TOO_LARGE` if the name exceeds {@linkcode CLASSIC_MAX_NAME_BYTES}.
 * @throws {TypeError} If the name is empty, or `token`, `tls` or `caCerts`
 * is given (the classic protocol has neither).
 *
 * @example Download from the lab server
 * ```ts ignore
 * import { classicGet } from "../client.ts";
 * const result = await classicGet("notes.txt", "notes.txt", { port: 65432 });
 * console.log(`${result.bytes} bytes, sha256 ${result.sha256}`);
 * ```
 */
export async function classicGet(
  name: string,
  destination: string | ByteWriter,
  options: ClassicGetOptions = {},
): Promise<TransferResult> {
  if (options.token !== undefined || options.tls || options.caCerts) {
    // Never fall back to plain, unauthenticated TCP behind the caller's back.
    throw new TypeError(
      "classicGet speaks plain TCP without authentication: token, tls and caCerts are not supported",
    );
  }
  const nameBytes = encoder.encode(name);
  if (nameBytes.length === 0) throw new TypeError("Name must not be empty");
  if (nameBytes.length > CLASSIC_MAX_NAME_BYTES) {
    throw new FerryError(
      "TOO_LARGE",
      `Name longer than ${CLASSIC_MAX_NAME_BYTES} bytes`,
    );
  }
  const timeoutMs = options.timeoutMs ?? CLASSIC_TIMEOUT_MS;
  const start = performance.now();
  const { openReceiver } = await import("./receiver.ts");
  const receiver = await openReceiver(destination, options.overwrite ?? false);
  let committed = false;
  let conn: Deno.TcpConn | undefined;
  let reader: ClassicReader | undefined;
  const signal = options.signal;
  function onAbort(): void {
    reader?.close();
  }
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    conn = await dial(options);
    reader = new ClassicReader(conn);
    try {
      await writeAll(conn, nameBytes);
    } catch (error) {
      throw connectionError(error, "Cannot send the name");
    }
    const size = await readSize(reader, name, timeoutMs);
    try {
      await writeAll(conn, READY);
    } catch {
      // The server may have closed already; the read below reports it.
    }
    const result = await receive(reader, receiver, size, options.onProgress);
    await receiver.commit();
    committed = true;
    return {
      path: name,
      bytes: size,
      algorithm: "sha256",
      digest: result,
      sha256: result,
      seconds: (performance.now() - start) / 1000,
    };
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!committed) await receiver.discard();
    if (reader) await reader.close();
    else conn?.close();
  }
}

/** Reads `EXISTS` and the size, or `NOT_EXISTS`. */
async function readSize(
  reader: ClassicReader,
  name: string,
  timeoutMs: number,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const header = new Uint8Array(EXISTS.length + CLASSIC_MAX_SIZE_DIGITS + 1);
  let have = 0;
  let digits = 0;
  while (true) {
    const left = deadline - performance.now();
    if (left <= 0 && digits === 0) {
      throw new FerryError(
        "TIMEOUT",
        `No complete reply from the classic server within ${timeoutMs} ms`,
      );
    }
    // Once a digit is in, silence ends the size (even past the deadline).
    const chunk = await reader.readWithin(
      digits > 0 ? CLASSIC_SIZE_QUIET_MS : left,
    );
    if (chunk === "timeout") {
      if (digits > 0) break;
      continue;
    }
    if (chunk === null) {
      if (digits > 0) break;
      throw new FerryError(
        "CONNECTION",
        have === 0
          ? "Connection closed before the classic server replied"
          : "Connection closed inside the classic server's reply",
      );
    }
    for (const byte of chunk) {
      if (have < EXISTS.length || header[0] !== EXISTS[0]) {
        // Still inside the keyword: EXISTS or NOT_EXISTS.
        header[have++] = byte;
        const matches = startsLike(header.subarray(0, have), EXISTS) ||
          startsLike(header.subarray(0, have), NOT_EXISTS);
        if (!matches) {
          throw new FerryError(
            "PROTOCOL",
            `Unexpected reply from the classic server: ${
              safeJson(new TextDecoder().decode(header.subarray(0, have)))
            }`,
          );
        }
        if (have === NOT_EXISTS.length && header[0] === NOT_EXISTS[0]) {
          throw new FerryError("NOT_FOUND", `Not found: ${name}`);
        }
        continue;
      }
      if (byte < DIGIT_0 || byte > DIGIT_9) {
        throw new FerryError(
          "PROTOCOL",
          `Non-digit byte 0x${
            byte.toString(16).padStart(2, "0")
          } in the classic size`,
        );
      }
      if (digits === CLASSIC_MAX_SIZE_DIGITS) {
        throw new FerryError(
          "PROTOCOL",
          `Classic size longer than ${CLASSIC_MAX_SIZE_DIGITS} digits`,
        );
      }
      header[have++] = byte;
      digits++;
    }
  }
  const text = new TextDecoder().decode(header.subarray(EXISTS.length, have));
  const size = Number(text);
  if (!Number.isSafeInteger(size)) {
    throw new FerryError(
      "PROTOCOL",
      `Classic size out of range: ${text}`,
    );
  }
  return size;
}

/** Whether `prefix` is the beginning of `word` (or `word` itself). */
function startsLike(prefix: Uint8Array, word: Uint8Array): boolean {
  if (prefix.length > word.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (prefix[i] !== word[i]) return false;
  }
  return true;
}

/** Receives exactly `size` bytes, then checks nothing more follows. */
async function receive(
  reader: ClassicReader,
  receiver: Receiver,
  size: number,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<string> {
  const [{ createHasher }, { copyHashed, makeBulkBuffers }] = await Promise
    .all([import("../_common/digest.ts"), import("../_common/copy.ts")]);
  const hash = await createHasher("sha256");
  let received: number;
  try {
    received = await copyHashed(
      reader,
      receiver.writer,
      size,
      hash,
      makeBulkBuffers(),
      onProgress && ((done) => onProgress(done, size)),
    );
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw connectionError(error, "Connection failed");
  }
  if (received < size) {
    throw new FerryError(
      "CONNECTION",
      `Connection closed after ${received} of ${size} bytes`,
    );
  }
  // The file counts only once the server has closed with nothing more:
  // a byte past the size at any time before the close (a size whose
  // digits came slowly, or a server that lies) keeps nothing.
  const extra = await reader.readWithin(CLASSIC_CLOSE_WAIT_MS).catch(() =>
    null
  );
  if (extra === "timeout") {
    throw new FerryError(
      "TIMEOUT",
      `The classic server did not close within ${CLASSIC_CLOSE_WAIT_MS} ms of the announced ${size} bytes`,
    );
  }
  if (extra !== null) {
    throw new FerryError(
      "PROTOCOL",
      `The classic server sent more than the announced ${size} bytes`,
    );
  }
  return toHex(hash.digest());
}

function connectionError(error: unknown, what: string): FerryError {
  return new FerryError("CONNECTION", `${what}: ${messageOf(error)}`, {
    cause: error,
  });
}

/**
 * Reads from a connection with timeouts that do not lose data: a read that
 * outlives its timeout stays pending, and its bytes are handed out by the
 * next call of {@linkcode ClassicReader.readWithin} or
 * {@linkcode ClassicReader.read}.
 */
class ClassicReader implements ByteReader {
  #conn: Deno.Conn;
  #scratch = new Uint8Array(HEADER_BUFFER_BYTES);
  #start = 0;
  #end = 0;
  #pending: Promise<number | null> | undefined;
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Waits for the pending small read (starting one if needed). */
  async #fill(ms: number | undefined): Promise<boolean | "timeout"> {
    if (!this.#pending) {
      const pending = this.#conn.read(this.#scratch);
      // Marked as handled: a read cut short by close() must not surface as
      // an unhandled rejection; whoever awaits it still sees the error.
      pending.catch(() => {});
      this.#pending = pending;
    }
    let n: number | null | "timeout";
    if (ms === undefined) {
      n = await this.#pending;
    } else {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), ms);
      });
      try {
        n = await Promise.race([this.#pending, timeout]);
      } finally {
        clearTimeout(timer);
      }
      if (n === "timeout") return n;
    }
    this.#pending = undefined;
    if (n === null) return false;
    this.#start = 0;
    this.#end = n;
    return true;
  }

  /**
   * Waits up to `ms` for bytes.
   *
   * @returns A view of the bytes (valid until the next call), `null` at end
   * of stream, or `"timeout"`.
   */
  async readWithin(ms: number): Promise<Uint8Array | null | "timeout"> {
    if (this.#start === this.#end) {
      const filled = await this.#fill(ms);
      if (filled !== true) return filled === false ? null : filled;
    }
    const bytes = this.#scratch.subarray(this.#start, this.#end);
    this.#start = this.#end;
    return bytes;
  }

  /** Reads bulk bytes: buffered or pending small reads first, then into `p`. */
  async read(p: Uint8Array): Promise<number | null> {
    if (p.length === 0) return 0;
    if (this.#start === this.#end) {
      if (!this.#pending) return await this.#conn.read(p);
      if (!await this.#fill(undefined)) return null;
    }
    const n = Math.min(p.length, this.#end - this.#start);
    p.set(this.#scratch.subarray(this.#start, this.#start + n));
    this.#start += n;
    return n;
  }

  /** Closes the connection and waits for a pending read to settle. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch {
        // Already closed.
      }
    }
    await this.#pending?.catch(() => {});
  }
}
