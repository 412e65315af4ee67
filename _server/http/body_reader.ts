/**
 * Reads a request body into a buffer the caller owns and reuses: with a
 * BYOB reader, the runtime fills the caller's buffer directly (the buffer
 * travels to the stream and back, so the caller takes the returned one for
 * the next read); with a default reader (a body that is not a byte
 * stream), chunks are copied in, the rest of a chunk kept for the next
 * read.
 *
 * @module
 */

/** The result of one read. */
export interface BodyRead {
  /** The caller's buffer, to use from now on (it may have moved). */
  buffer: Uint8Array<ArrayBuffer>;
  /** Bytes read into it at the offset asked for. */
  n: number;
  /** The body ended (`n` is 0 then). */
  done: boolean;
}

/** A request body, read into the caller's buffers. */
export class BodyReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #default: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #rest: Uint8Array | undefined;

  /**
   * Takes the body's reader.
   *
   * @param body The request's body stream.
   */
  constructor(body: ReadableStream<Uint8Array>) {
    try {
      this.#byob = body.getReader({ mode: "byob" });
    } catch {
      this.#default = body.getReader();
    }
  }

  /**
   * Reads the next bytes into `buffer` from `offset` on.
   *
   * @param buffer The caller's buffer (left untouched before `offset`).
   * @param offset Where the new bytes go; must leave room.
   * @returns The buffer to use from now on and how many bytes came.
   */
  async readInto(
    buffer: Uint8Array<ArrayBuffer>,
    offset: number,
  ): Promise<BodyRead> {
    if (this.#byob) {
      const { byteOffset, length } = buffer;
      const { value, done } = await this.#byob.read(buffer.subarray(offset));
      if (value === undefined) {
        // The stream was cancelled: the buffer is gone with it.
        return { buffer: new Uint8Array(length), n: 0, done: true };
      }
      const moved = new Uint8Array(
        value.buffer as ArrayBuffer,
        byteOffset,
        length,
      );
      return { buffer: moved, n: done ? 0 : value.length, done };
    }
    let chunk = this.#rest;
    this.#rest = undefined;
    while (chunk === undefined || chunk.length === 0) {
      const { value, done } = await this.#default!.read();
      if (done) return { buffer, n: 0, done: true };
      chunk = value;
    }
    const n = Math.min(chunk.length, buffer.length - offset);
    buffer.set(chunk.subarray(0, n), offset);
    if (n < chunk.length) this.#rest = chunk.subarray(n);
    return { buffer, n, done: false };
  }

  /**
   * Stops reading (the rest of the body is dropped).
   *
   * @param reason Why.
   */
  async cancel(reason: Error): Promise<void> {
    try {
      await (this.#byob ?? this.#default)!.cancel(reason);
    } catch {
      // Already closed or errored.
    }
  }
}
