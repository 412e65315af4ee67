/**
 * Replies to pipelined requests gathered into large writes: a client that
 * sends many `GET`s of small files at once would otherwise get one socket
 * write (and read, on its side) per file, which costs more than the file's
 * bytes. A {@linkcode ReplyBatch} holds whole replies the request loop
 * queued while the next request was already buffered, up to
 * {@linkcode REPLY_BATCH_BYTES}; anything written to the connection
 * otherwise goes out after them, so replies keep their order, and the
 * request loop flushes before it waits for the peer.
 *
 * @module
 */

import { bulkBuffer } from "../_common/copy.ts";
import { type ByteWriter, writeAll } from "../protocol.ts";

/** Most reply bytes held back: 64 KiB (a reply larger goes out at once). */
export const REPLY_BATCH_BYTES = 64 * 1024;

/**
 * Room a reply written in place takes at most ({@linkcode ReplyBatch.room}):
 * a small file of 64 KiB and its frames. The batch's buffer holds this much
 * beyond {@linkcode REPLY_BATCH_BYTES} once a reply is written in place.
 */
export const REPLY_ROOM_BYTES = 64 * 1024 + 1024;

/**
 * Whole replies held back, then written in one write.
 *
 * @example Two replies, one write
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReplyBatch } from "./reply_batch.ts";
 * const writes: number[] = [];
 * const batch = new ReplyBatch({
 *   write: (p: Uint8Array) => Promise.resolve(writes.push(p.length) && p.length),
 * });
 * await batch.queue(new Uint8Array(10));
 * await batch.queue(new Uint8Array(20));
 * await batch.flush();
 * assert.deepEqual(writes, [30]);
 * ```
 */
export class ReplyBatch {
  #sink: ByteWriter;
  #buffer: Uint8Array | undefined;
  #length = 0;
  /** A write of the held bytes is under way (the buffer is being read). */
  #writing = false;

  /**
   * Holds replies for `sink`.
   *
   * @param sink The connection.
   */
  constructor(sink: ByteWriter) {
    this.#sink = sink;
  }

  /**
   * A writer that holds whole replies back ({@linkcode ReplyBatch.queue}):
   * each write must be one or more whole frames.
   */
  readonly held: ByteWriter = {
    write: async (p: Uint8Array): Promise<number> => {
      await this.queue(p);
      return p.length;
    },
  };

  /**
   * Copies a whole reply behind the ones held (the caller may reuse
   * `bytes` at once); writes what is held first when it would not fit, and
   * a reply larger than the batch directly.
   *
   * @param bytes One or more whole frames.
   * @returns Once held or written.
   */
  async queue(bytes: Uint8Array): Promise<void> {
    if (this.#length + bytes.length > REPLY_BATCH_BYTES) await this.flush();
    if (bytes.length > REPLY_BATCH_BYTES) {
      await writeAll(this.#sink, bytes);
      return;
    }
    this.#buffer ??= bulkBuffer(REPLY_BATCH_BYTES); // off the page boundary
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /**
   * Whether a reply may be written in place now ({@linkcode ReplyBatch.room}):
   * no write of the buffer is under way and less than
   * {@linkcode REPLY_BATCH_BYTES} is held (else flush first).
   */
  get roomy(): boolean {
    return !this.#writing && this.#length < REPLY_BATCH_BYTES;
  }

  /**
   * The free space behind the replies held, {@linkcode REPLY_ROOM_BYTES}
   * long, to write one reply into without a copy; then
   * {@linkcode ReplyBatch.commit} holds it. Only while
   * {@linkcode ReplyBatch.roomy}; valid until the next call that writes.
   *
   * @returns The space.
   * @throws {RangeError} If the batch is not roomy.
   */
  room(): Uint8Array {
    if (!this.roomy) throw new RangeError("No room: flush first");
    const size = REPLY_BATCH_BYTES + REPLY_ROOM_BYTES;
    let buffer = this.#buffer;
    if (buffer === undefined || buffer.length < size) {
      const grown = bulkBuffer(size); // off the page boundary
      if (buffer !== undefined) grown.set(buffer.subarray(0, this.#length));
      buffer = this.#buffer = grown;
    }
    return buffer.subarray(this.#length, this.#length + REPLY_ROOM_BYTES);
  }

  /**
   * Holds the `n` bytes just written at the start of
   * {@linkcode ReplyBatch.room}.
   *
   * @param n Bytes of whole frames written there.
   * @throws {RangeError} If `n` is more than the room.
   */
  commit(n: number): void {
    if (!(n >= 0 && n <= REPLY_ROOM_BYTES) || !this.roomy) {
      throw new RangeError(`Cannot hold ${n} bytes written in place`);
    }
    this.#length += n;
  }

  /**
   * Writes what is held.
   *
   * @param release Also drop the buffer (the peer has nothing more
   * pipelined: memory goes back until the next batch).
   * @returns Once written.
   */
  async flush(release = false): Promise<void> {
    const length = this.#length;
    if (length > 0) {
      // Nothing is held once the write starts, whether it succeeds or not.
      this.#length = 0;
      this.#writing = true;
      try {
        await writeAll(this.#sink, this.#buffer!.subarray(0, length));
      } finally {
        this.#writing = false;
      }
    }
    if (release) this.#buffer = undefined;
  }

  /**
   * Writes `p` after what is held (a write of anything but a held reply).
   *
   * @param p The bytes.
   * @returns The bytes of `p` written.
   */
  async write(p: Uint8Array): Promise<number> {
    await this.flush();
    return await this.#sink.write(p);
  }
}

/**
 * `conn` with every write going through `batch` (held replies first); the
 * rest of the connection as it is.
 *
 * @param conn The connection `batch` writes to.
 * @param batch The replies held for it.
 * @returns The connection to use for everything else.
 *
 * @example Wrap a connection
 * ```ts ignore
 * import { batchedConn, ReplyBatch } from "./reply_batch.ts";
 * declare const conn: Deno.Conn;
 * const batch = new ReplyBatch(conn);
 * const out = batchedConn(conn, batch);
 * await out.write(new Uint8Array(1)); // after whatever batch held
 * ```
 */
export function batchedConn<C extends Deno.Conn>(
  conn: C,
  batch: ReplyBatch,
): C {
  const write = (p: Uint8Array): Promise<number> => batch.write(p);
  return new Proxy(conn, {
    get(target, key) {
      if (key === "write") return write;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
