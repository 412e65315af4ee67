/**
 * The reply to a `GET` taken whole from what the session has already
 * received: a pipelined tree download gets the replies of many small files
 * in one read, and each would otherwise go through `receiveFile`'s
 * frame-by-frame reads and copy loop (several awaited calls and a copy
 * into the bulk buffer, for a reply that is already in memory).
 *
 * {@linkcode receiveBuffered} applies only when `DATA` (from offset 0),
 * all its bytes and a `HASH` are buffered, and the digest matches; then it
 * consumes them, writes the bytes and commits. In every other case it
 * consumes nothing and the caller runs `receiveFile`, whose checks and
 * errors are the reference.
 *
 * @module
 */

import { sameBytes } from "../_common/bytes.ts";
import { digestFits, digestOf } from "../_common/digest.ts";
import type { ReceiveFileOptions } from "./receive.ts";
import type { Receiver } from "./receiver.ts";
import type { SessionIo } from "./session_io.ts";
import { type TransferResult, transferResult } from "./types.ts";
import { decodeFrame, type Message, writeAll } from "../protocol.ts";

/**
 * Receives a reply to `GET` (at offset 0) that is already wholly buffered.
 *
 * @param io The session.
 * @param receiver The local end, at offset 0.
 * @param options The remote path and callbacks.
 * @returns What was transferred, or `undefined` with nothing consumed
 * (not wholly buffered, not `DATA` + bytes + `HASH`, a digest that does not
 * match: `receiveFile` then reads and reports it).
 * @throws {FerryError} `LOCAL` (recoverable: the reply was consumed) if the
 * bytes cannot be written or committed; the receiver is discarded then.
 */
export async function receiveBuffered(
  io: SessionIo,
  receiver: Receiver,
  options: ReceiveFileOptions,
): Promise<TransferResult | undefined> {
  if (!io.buffered || !io.consume || (receiver.offset ?? 0) !== 0) {
    return undefined;
  }
  const since = options.since ?? performance.now();
  const view = io.buffered();
  const data = frameAt(view, 0);
  if (data?.message.type !== "data" || data.message.offset !== 0) {
    return undefined;
  }
  const { size, mtime } = data.message;
  const end = data.size + size;
  const hash = frameAt(view, end);
  if (hash?.message.type !== "hash") return undefined;
  const body = view.subarray(data.size, end);
  const digest = await digestOf(io.digest, body);
  if (
    !digestFits(io.digest, hash.message.digest) ||
    !sameBytes(hash.message.digest, digest)
  ) {
    return undefined;
  }
  // The reply is consumed before anything local can fail: the session
  // stays in step whatever happens to the file. `body` stays valid, as
  // nothing reads the connection until this returns.
  io.consume(end + hash.size);
  try {
    if (receiver.saveWhole !== undefined) {
      options.onStart?.(size);
      receiver.saveWhole(body, mtime);
      options.onProgress?.(size, size);
    } else {
      await receiver.start?.(data.message);
      options.onStart?.(size);
      await writeAll(receiver.writer, body);
      options.onProgress?.(size, size);
      await receiver.commit(mtime);
    }
  } catch (error) {
    await receiver.discard();
    throw io.keep(error);
  }
  return transferResult(options.path, size, {
    algorithm: io.digest,
    digest,
    start: since,
  });
}

/** The whole frame at `offset` of `view`, if there is one (never throws). */
function frameAt(
  view: Uint8Array,
  offset: number,
): { message: Message; size: number } | undefined {
  if (offset > view.length) return undefined;
  try {
    return decodeFrame(view.subarray(offset));
  } catch {
    return undefined; // a bad frame: receiveFile reports it
  }
}
