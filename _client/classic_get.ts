/**
 * The classic client's transfer, for `classicGet` in
 * `_client/classic.ts` (whose module doc describes the protocol and the
 * rules), imported when it runs.
 *
 * @module
 */

import { safeJson } from "../_common/escape.ts";
import type { TransferResult } from "./types.ts";
import { dial } from "./dial.ts";
import { startQuietTimer } from "../_common/quiet_timer.ts";
import { messageOf } from "../_common/text.ts";
import { openReceiver, type Receiver } from "./receiver.ts";
import { createHasher } from "../_common/digest.ts";
import { copyHashed, makeBulkBuffers } from "../_common/copy.ts";
import { toHex } from "../_common/bytes.ts";
import { FerryError } from "../errors.ts";
import { type ByteReader, type ByteWriter, writeAll } from "../protocol.ts";
import {
  CLASSIC_CLOSE_WAIT_MS,
  CLASSIC_MAX_SIZE_DIGITS,
  CLASSIC_SIZE_QUIET_MS,
  type ClassicGetOptions,
  type FetchClassic,
} from "./classic.ts";

const encoder = new TextEncoder();
const EXISTS = encoder.encode("EXISTS");
const NOT_EXISTS = encoder.encode("NOT_EXISTS");
const READY = encoder.encode("READY");
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const HEADER_BUFFER_BYTES = 64;

/**
 * Fetches the file named by `nameBytes` (checked by `classicGet`).
 *
 * @param nameBytes The name, in UTF-8.
 * @param destination Local file path, or a writer.
 * @param options `classicGet`'s options, with the name and the timeout.
 * @returns What was transferred.
 */
export async function fetchClassic(
  nameBytes: Uint8Array,
  destination: string | ByteWriter,
  options: ClassicGetOptions & { name: string; timeoutMs: number },
): Promise<TransferResult> {
  const { name, timeoutMs } = options;
  const start = performance.now();
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

// The shape _client/classic.ts imports it as.
fetchClassic satisfies FetchClassic;

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
      // A quiet timer, not setTimeout (whose first call loads Node's
      // timers): the pending read keeps the process alive meanwhile.
      let cancel: (() => void) | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        cancel = startQuietTimer(ms, () => resolve("timeout"));
      });
      try {
        n = await Promise.race([this.#pending, timeout]);
      } finally {
        cancel?.();
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
