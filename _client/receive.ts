/**
 * The client's one way of receiving a file, used by every download: a
 * single `FerryClient.get`, the pipelined and tree downloads
 * (`_client/tree_get.ts`) and the resumed ones (`_client/resume.ts`).
 *
 * {@linkcode receiveFile} reads the reply to a `GET`: the `DATA` frame,
 * then the raw bytes into a {@linkcode Receiver} with the running digest (in
 * the session's algorithm),
 * then the server's `HASH` checked against it; it commits the receiver
 * when they match and discards it otherwise. One rule decides what a
 * failure leaves: bytes cut short by a broken session stay in `DEST.part`
 * (a later download may continue from them); bytes the server or the check
 * refused (`CHANGED`, `INTEGRITY`) and a refusal before `DATA` leave
 * nothing. Where the bytes go, and what a commit does, is the receiver's.
 *
 * @module
 */

import { sameBytes, toHex } from "../_common/bytes.ts";
import { copyHashed } from "../_common/copy.ts";
import { createHasher, digestFits, type Hasher } from "../_common/digest.ts";
import type { Receiver } from "./receiver.ts";
import type { SessionIo } from "./session_io.ts";
import { type TransferResult, transferResult } from "./types.ts";
import { FerryError } from "../errors.ts";
import type { ByteWriter, DataMessage } from "../protocol.ts";

/** Options of {@linkcode receiveFile} and {@linkcode getFile}. */
export interface ReceiveFileOptions {
  /** The remote file (for the request and the result). */
  path: string;
  /** Called once `DATA` came, with the whole file's size. */
  onStart?: (size: number) => void;
  /** Called as bytes arrive: bytes of the whole file so far, and its size. */
  onProgress?: (done: number, total: number) => void;
  /**
   * When the transfer started, for the result's `seconds`.
   *
   * @default {performance.now()}
   */
  since?: number;
}

/**
 * Sends `GET path offset` (the offset is the bytes the receiver holds)
 * and receives the reply with {@linkcode receiveFile}.
 *
 * @param io The session.
 * @param receiver The local end; discarded if the request cannot be sent.
 * @param options The remote path and callbacks.
 * @returns What was transferred.
 * @throws {FerryError} As {@linkcode receiveFile}; `BAD_REQUEST`
 * (recoverable) for a path the protocol cannot carry.
 *
 * @example Download a file into a writer
 * ```ts ignore
 * import { getFile } from "./receive.ts";
 * import { openReceiver } from "./receiver.ts";
 * import type { SessionIo } from "./session_io.ts";
 * declare const io: SessionIo;
 * const receiver = await openReceiver(Deno.stdout, false);
 * console.log((await getFile(io, receiver, { path: "a.txt" })).digest);
 * ```
 */
export async function getFile(
  io: SessionIo,
  receiver: Receiver,
  options: ReceiveFileOptions,
): Promise<TransferResult> {
  const since = options.since ?? performance.now();
  try {
    await io.send([{
      type: "get",
      path: options.path,
      offset: receiver.offset ?? 0,
    }]);
  } catch (error) {
    await receiver.discard();
    throw error;
  }
  return await receiveFile(io, receiver, { ...options, since });
}

/**
 * Receives the reply to a `GET` already sent (at the receiver's offset):
 * `DATA`, the raw bytes into the receiver, `HASH`; commits the receiver
 * when the digest matches, discards it otherwise (keeping the bytes only
 * when the session broke after `DATA`).
 *
 * @param io The session.
 * @param receiver The local end.
 * @param options The remote path and callbacks.
 * @returns What was transferred.
 * @throws {FerryError} The server's refusal before `DATA` or in place of
 * `HASH` (such as `CHANGED`; recoverable); `INTEGRITY` (recoverable) if the
 * digests differ; `LOCAL` (recoverable) if the commit fails; `CONNECTION`
 * (`Connection closed after N of M bytes`) or `PROTOCOL` if the session
 * breaks; whatever the receiver's writer throws.
 *
 * @example Receive the reply to a GET sent earlier
 * ```ts ignore
 * import { receiveFile } from "./receive.ts";
 * import { openReceiver } from "./receiver.ts";
 * import type { SessionIo } from "./session_io.ts";
 * declare const io: SessionIo;
 * await io.send([{ type: "get", path: "a.txt", offset: 0 }]);
 * const receiver = await openReceiver("a.txt", true);
 * console.log((await receiveFile(io, receiver, { path: "a.txt" })).bytes);
 * ```
 */
export async function receiveFile(
  io: SessionIo,
  receiver: Receiver,
  options: ReceiveFileOptions,
): Promise<TransferResult> {
  const since = options.since ?? performance.now();
  const offset = receiver.offset ?? 0;
  let started = false;
  try {
    const data = await expectData(io, offset);
    started = true;
    await receiver.start?.(data);
    options.onStart?.(data.size);
    const digest = await receiveVerified(io, receiver.writer, {
      size: data.size,
      offset,
      hash: receiver.hash ?? await createHasher(io.digest),
      onProgress: options.onProgress,
    });
    try {
      await receiver.commit(data.mtime);
    } catch (error) {
      throw io.keep(error);
    }
    return transferResult(options.path, data.size, {
      algorithm: io.digest,
      digest,
      start: since,
    });
  } catch (error) {
    await receiver.discard(started && !io.recoverable(error));
    throw error;
  }
}

/** Reads the `DATA` frame of a `GET` and checks it starts where asked. */
async function expectData(
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

/**
 * Receives the raw bytes that follow `DATA` into `sink`, hashing them,
 * then reads the server's `HASH` and checks it; returns the digest.
 */
async function receiveVerified(
  io: Pick<SessionIo, "source" | "buffers" | "expect" | "keep" | "digest">,
  sink: ByteWriter,
  options: {
    size: number;
    offset: number;
    hash: Hasher;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<Uint8Array> {
  const { size, offset, hash, onProgress } = options;
  const moved = await copyHashed(
    io.source,
    sink,
    size - offset,
    hash,
    io.buffers(),
    onProgress && ((done) => onProgress(offset + done, size)),
  );
  if (moved < size - offset) {
    throw new FerryError(
      "CONNECTION",
      `Connection closed after ${offset + moved} of ${size} bytes`,
    );
  }
  const reply = await io.expect("hash");
  if (!digestFits(io.digest, reply.digest)) {
    throw new FerryError(
      "PROTOCOL",
      `HASH of ${reply.digest.length} bytes in a ${io.digest} session`,
    );
  }
  const digest = hash.digest();
  if (!sameBytes(reply.digest, digest)) {
    throw io.keep(
      new FerryError(
        "INTEGRITY",
        `Integrity check failed: the server's ${io.digest} is ${
          toHex(reply.digest)
        }, the received bytes' is ${toHex(digest)}`,
      ),
    );
  }
  return digest;
}
