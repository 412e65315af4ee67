/**
 * The client's receiving side of a `GET`, shared by
 * {@linkcode ./client.ts FerryClient.get}, the pipelined downloads
 * (`_client/tree_get.ts`) and the resumable ones (`_client/resume.ts`): the `DATA` frame,
 * then the raw bytes into a sink with the running SHA-256, then the
 * server's `HASH` checked against it. What happens to the received bytes
 * afterwards (rename, record, keep or remove a part) is each caller's own.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { copyHashed } from "../_common/copy.ts";
import { sameBytes, toHex } from "../_common/bytes.ts";
import type { SessionIo } from "./session_io.ts";
import { FerryError } from "../errors.ts";
import type { ByteWriter, DataMessage } from "../protocol.ts";

/**
 * Reads the `DATA` frame of a `GET` and checks it starts where asked.
 *
 * @param io The session.
 * @param offset The offset the `GET` asked for.
 * @returns The `DATA` message.
 * @throws {FerryError} The server's refusal (recoverable); `PROTOCOL` if
 * `DATA` starts elsewhere; `CONNECTION` if the session breaks.
 *
 * @example Ask for a whole file
 * ```ts ignore
 * import { expectData } from "./receive.ts";
 * import type { SessionIo } from "./session_io.ts";
 * declare const io: SessionIo;
 * await io.send([{ type: "get", path: "a.txt", offset: 0 }]);
 * const data = await expectData(io, 0);
 * console.log(data.size);
 * ```
 */
export async function expectData(
  io: Pick<SessionIo, "expect">,
  offset: number,
): Promise<DataMessage> {
  const data = await io.expect("data");
  if (data.offset !== offset) {
    throw new FerryError(
      "PROTOCOL",
      `DATA starts at offset ${data.offset}, ${offset} was asked for`,
    );
  }
  return data;
}

/** Options of {@linkcode receiveVerified}. */
export interface ReceiveOptions {
  /** The whole file's size, from `DATA`. */
  size: number;
  /**
   * Bytes the sink already holds (a resumed download); `hash` has hashed
   * them, and only `size - offset` bytes come.
   *
   * @default {0}
   */
  offset?: number;
  /** The running SHA-256 (holding the first `offset` bytes). */
  hash: Hash;
  /** Called as bytes arrive: bytes of the whole file so far, and its size. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Called when the connection ends before all bytes came, right before
   * the `CONNECTION` error is thrown (the bytes so far may be worth keeping).
   */
  onCut?: () => void;
  /**
   * Called when the SHA-256 differs from the server's, right before the
   * `INTEGRITY` error is thrown.
   */
  onMismatch?: () => void;
}

/**
 * Receives the raw bytes that follow `DATA` into `sink`, hashing them,
 * then reads the server's `HASH` and checks it.
 *
 * @param io The session (its byte source, buffers and frames).
 * @param sink Where the bytes go.
 * @param options Size, offset, running hash and callbacks.
 * @returns The SHA-256 of the whole file, equal to the server's.
 * @throws {FerryError} `CONNECTION` (`Connection closed after N of M bytes`)
 * if the bytes stop early; the server's `ERROR` instead of `HASH` (such as
 * `CHANGED`, recoverable); `INTEGRITY` (recoverable) if the digests differ;
 * whatever the sink throws.
 *
 * @example Receive a whole file into a writer
 * ```ts ignore
 * import { createHash } from "node:crypto";
 * import { expectData, receiveVerified } from "./receive.ts";
 * import type { SessionIo } from "./session_io.ts";
 * declare const io: SessionIo;
 * await io.send([{ type: "get", path: "a.txt", offset: 0 }]);
 * const data = await expectData(io, 0);
 * const digest = await receiveVerified(io, Deno.stdout, {
 *   size: data.size,
 *   hash: createHash("sha256"),
 * });
 * console.log(digest.length);
 * ```
 */
export async function receiveVerified(
  io: Pick<SessionIo, "source" | "buffers" | "expect" | "keep">,
  sink: ByteWriter,
  options: ReceiveOptions,
): Promise<Uint8Array> {
  const { size, hash, onProgress } = options;
  const offset = options.offset ?? 0;
  const moved = await copyHashed(
    io.source,
    sink,
    size - offset,
    hash,
    io.buffers(),
    onProgress && ((done) => onProgress(offset + done, size)),
  );
  if (moved < size - offset) {
    options.onCut?.();
    throw new FerryError(
      "CONNECTION",
      `Connection closed after ${offset + moved} of ${size} bytes`,
    );
  }
  const reply = await io.expect("hash");
  const digest = hash.digest();
  if (!sameBytes(reply.sha256, digest)) {
    options.onMismatch?.();
    throw io.keep(
      new FerryError(
        "INTEGRITY",
        `Integrity check failed: the server's SHA-256 is ${
          toHex(reply.sha256)
        }, the received bytes' is ${toHex(digest)}`,
      ),
    );
  }
  return digest;
}
