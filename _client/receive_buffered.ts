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
import {
  type DataMessage,
  decodeFrame,
  DIGEST_BYTES,
  type DigestAlgorithm,
  FRAME_HEADER_BYTES,
  FRAME_TYPES,
  MAX_DIGEST_BYTES,
  type Message,
  writeAll,
} from "../protocol.ts";
import { nativeXxh3 } from "../_common/native_xxh3.ts";

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
  const since = options.since ?? performance.now();
  const reply = bufferedReply(io, receiver);
  if (reply === undefined) return undefined;
  const digest = await digestOf(io.digest, reply.body);
  if (!matches(io, reply, digest)) return undefined;
  // The reply is consumed before anything local can fail: the session
  // stays in step whatever happens to the file. `body` stays valid, as
  // nothing reads the connection until this returns.
  io.consume!(reply.size);
  const { body, data } = reply;
  try {
    if (receiver.saveWhole !== undefined) {
      options.onStart?.(data.size);
      receiver.saveWhole(body, data.mtime);
      options.onProgress?.(data.size, data.size);
    } else {
      await receiver.start?.(data);
      options.onStart?.(data.size);
      await writeAll(receiver.writer, body);
      options.onProgress?.(data.size, data.size);
      await receiver.commit(data.mtime);
    }
  } catch (error) {
    await receiver.discard();
    throw io.keep(error);
  }
  return transferResult(options.path, data.size, {
    algorithm: io.digest,
    digest,
    start: since,
  });
}

/**
 * {@linkcode receiveBuffered} without a single `await`, where all of it is
 * synchronous: an XXH3 session with libxxhash and a receiver that saves a
 * file whole ({@linkcode Receiver.saveWhole}). A tree of small files takes
 * most of its replies this way, a loop with no promise per file.
 *
 * @param io The session.
 * @param receiver The local end, at offset 0.
 * @param options The remote path and callbacks.
 * @returns What was transferred, or `undefined` with nothing consumed (also
 * where the synchronous path does not apply).
 * @throws {FerryError} As {@linkcode receiveBuffered}; the receiver is
 * discarded then.
 */
export function receiveBufferedNow(
  io: SessionIo,
  receiver: Receiver,
  options: ReceiveFileOptions,
): TransferResult | undefined {
  if (receiver.saveWhole === undefined || io.digest !== "xxh3-128") {
    return undefined;
  }
  const native = nativeXxh3();
  if (native === undefined) return undefined;
  const since = options.since ?? performance.now();
  const reply = bufferedReply(io, receiver);
  if (reply === undefined) return undefined;
  const digest = native.hash(reply.body);
  if (!matches(io, reply, digest)) return undefined;
  io.consume!(reply.size); // as in receiveBuffered
  const { body, data } = reply;
  try {
    options.onStart?.(data.size);
    receiver.saveWhole(body, data.mtime);
    options.onProgress?.(data.size, data.size);
  } catch (error) {
    receiver.discard().catch(() => {});
    throw io.keep(error);
  }
  return transferResult(options.path, data.size, {
    algorithm: io.digest,
    digest,
    start: since,
  });
}

/** A reply wholly buffered: `DATA`, its bytes and `HASH`. */
interface BufferedReply {
  data: DataMessage;
  body: Uint8Array;
  digest: Uint8Array;
  /** Bytes of the whole reply. */
  size: number;
}

/**
 * The reply at the head of the session's buffer, if it is wholly there
 * and is `DATA` (from offset 0) + bytes + `HASH`; consumes nothing.
 */
function bufferedReply(
  io: SessionIo,
  receiver: Receiver,
): BufferedReply | undefined {
  if (!io.buffered || !io.consume || (receiver.offset ?? 0) !== 0) {
    return undefined;
  }
  const view = io.buffered();
  const simple = simpleReply(view);
  if (simple !== undefined) return simple;
  const data = frameAt(view, 0);
  if (data?.message.type !== "data" || data.message.offset !== 0) {
    return undefined;
  }
  const end = data.size + data.message.size;
  const hash = frameAt(view, end);
  if (hash?.message.type !== "hash") return undefined;
  return {
    data: data.message,
    body: view.subarray(data.size, end),
    digest: hash.message.digest,
    size: end + hash.size,
  };
}

const DATA = FRAME_TYPES.data;
const HASH = FRAME_TYPES.hash;
/** `DATA`'s payload: size `u64`, offset `u64`, mtime `i64`. */
const DATA_PAYLOAD = 24;
/** Highest upper half of a safe integer (`decodeFrame`'s limit). */
const SAFE_HIGH = 2 ** 21 - 1;

/**
 * {@linkcode bufferedReply} read straight from the bytes, without
 * decoding two frames into messages: the common shape only (`DATA` at
 * offset 0 with sizes and time in the safe range, then `HASH` of 1 to
 * `MAX_DIGEST_BYTES` bytes), `undefined` for anything else, which
 * `decodeFrame` then reads (and whose checks are the reference).
 */
function simpleReply(view: Uint8Array): BufferedReply | undefined {
  const header = FRAME_HEADER_BYTES;
  if (
    view.length < header + DATA_PAYLOAD || view[0] !== DATA ||
    u32At(view, 1) !== DATA_PAYLOAD
  ) return undefined;
  const sizeHigh = u32At(view, header);
  const mtimeHigh = u32At(view, header + 16) | 0;
  if (
    sizeHigh > SAFE_HIGH || u32At(view, header + 8) !== 0 ||
    u32At(view, header + 12) !== 0 || mtimeHigh > SAFE_HIGH ||
    mtimeHigh < -SAFE_HIGH
  ) return undefined;
  const size = sizeHigh * 2 ** 32 + u32At(view, header + 4);
  const mtime = mtimeHigh * 2 ** 32 + u32At(view, header + 20);
  const end = header + DATA_PAYLOAD + size;
  if (view.length < end + header || view[end] !== HASH) return undefined;
  const length = u32At(view, end + 1);
  if (
    length < 1 || length > MAX_DIGEST_BYTES ||
    view.length < end + header + length
  ) return undefined;
  return {
    data: { type: "data", size, offset: 0, mtime },
    body: view.subarray(header + DATA_PAYLOAD, end),
    digest: view.subarray(end + header, end + header + length),
    size: end + header + length,
  };
}

/**
 * The bytes the reply at the head of `view` takes whole, as far as its
 * start tells: a `DATA` header not yet whole needs its header first; a
 * `DATA` at offset 0 of at most `maxSize` bytes needs its bytes and a
 * `HASH` of the session's digest. `undefined` for anything else (a larger
 * file, another frame: `receiveFile` reads it as it comes).
 *
 * @param view The buffered bytes.
 * @param algorithm The session's digest.
 * @param maxSize Largest file size to wait for whole.
 * @returns Bytes to have buffered before trying again, or `undefined`.
 */
export function wholeReplyBytes(
  view: Uint8Array,
  algorithm: DigestAlgorithm,
  maxSize: number,
): number | undefined {
  const header = FRAME_HEADER_BYTES;
  if (view.length < header + DATA_PAYLOAD) {
    return view.length === 0 || view[0] === DATA
      ? header + DATA_PAYLOAD
      : undefined;
  }
  if (
    view[0] !== DATA || u32At(view, 1) !== DATA_PAYLOAD ||
    u32At(view, header) !== 0
  ) return undefined;
  const size = u32At(view, header + 4);
  if (size > maxSize) return undefined;
  return header + DATA_PAYLOAD + size + header + DIGEST_BYTES[algorithm];
}

/** The big-endian `u32` at `at` of `bytes` (in bounds). */
function u32At(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) |
    bytes[at + 3]) >>> 0;
}

/** Whether the digest of the bytes is the one the server sent. */
function matches(
  io: SessionIo,
  reply: BufferedReply,
  digest: Uint8Array,
): boolean {
  return digestFits(io.digest, reply.digest) && sameBytes(reply.digest, digest);
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
