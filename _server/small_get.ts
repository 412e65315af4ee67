/**
 * The server's fast path for a `GET` of a small file from its start: the
 * file is opened once and proven inside the root
 * ({@linkcode openProvenSync}), read whole into the connection's bulk
 * buffer, checked unchanged, hashed (in the session's digest algorithm), and sent as `DATA`, bytes and `HASH`
 * in a single write.
 *
 * The streaming path (`copyHashed`) costs about a dozen asynchronous calls
 * per file (each a hop through the blocking-call thread pool and back,
 * tens of microseconds on a busy machine) and three writes to the socket;
 * this path makes synchronous calls of a few microseconds each and one
 * write, which is what a tree of thousands of small files needs. Files up
 * to {@linkcode SMALL_FILE_BYTES} are read synchronously: from the page
 * cache that is a copy of a few microseconds, from a cold disk the event
 * loop (every connection) waits for one read of at most that size.
 *
 * Because the whole file is read before anything is sent, a file that
 * changed while it was read is refused in band (`CHANGED` instead of
 * `DATA`) and the connection stays usable.
 *
 * @module
 */

import { closeSync, readSync } from "node:fs";
import type { BulkBuffers } from "../_common/copy.ts";
import { digestOf } from "../_common/digest.ts";
import { nativeXxh3 } from "../_common/native_xxh3.ts";
import { splitWirePath } from "../_common/wire_path.ts";
import type { Libc } from "./dir_handle.ts";
import { sameVersion } from "./hash_cache.ts";
import type { HashCache } from "./hash_cache.ts";
import type { HeldFolder } from "./held_folder.ts";
import { openProvenSync } from "./path_jail.ts";
import { refuseTempName } from "./temp.ts";
import { FerryError } from "../errors.ts";
import {
  DATA_FRAME_BYTES,
  type DigestAlgorithm,
  encodeMessage,
  MAX_DIGEST_BYTES,
  writeAll,
  writeDataFrame,
  writeHashFrame,
} from "../protocol.ts";
import type { ByteWriter } from "../protocol.ts";

/** Largest file sent by {@linkcode sendSmallFile}: 64 KiB. */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * Bytes the frames around a small file take at most: `DATA` (5-byte header
 * and 24 bytes) and `HASH` (5 and the digest).
 */
export const FRAMES_BYTES: number = 5 + 24 + 5 + MAX_DIGEST_BYTES;

/** What {@linkcode sendSmallFile} needs of the server. */
export interface SmallGet {
  /** The served folder, real path. */
  realRoot: string;
  /** The file's real host path (from `resolveExistingSync`). */
  hostPath: string;
  /** The wire path, for messages. */
  wirePath: string;
  /** The connection. */
  conn: ByteWriter;
  /** The connection's bulk buffers (the first one is used). */
  buffers: BulkBuffers;
  /** The server's digest cache, if any. */
  hashCache: HashCache | undefined;
  /** The session's digest algorithm. */
  algorithm: DigestAlgorithm;
}

/**
 * Sends a whole small file as `DATA`, its bytes and `HASH`, in one write.
 *
 * @param get The file and the connection.
 * @returns `undefined` when the opened file is larger than
 * {@linkcode SMALL_FILE_BYTES} or the buffer: nothing was sent, use the
 * streaming path. Otherwise the bytes sent and whether the digest came from
 * the cache.
 * @throws {FerryError} `FORBIDDEN` if the file opened is outside the root or
 * not a regular file, `NOT_FOUND` if it vanished, `CHANGED` if it changed
 * while it was read; nothing was sent then. Errors of the write itself are
 * the connection's.
 */
export async function sendSmallFile(
  get: SmallGet,
): Promise<{ bytes: number; cached: boolean } | undefined> {
  const proven = openProvenSync(get.realRoot, get.hostPath, get.wirePath);
  let frame: Uint8Array;
  let cached: Uint8Array | undefined;
  let size: number;
  try {
    const observedAt = Date.now();
    const before = proven.info;
    if (!before.isFile) {
      throw new FerryError("FORBIDDEN", `Not a file: ${get.wirePath}`);
    }
    size = before.size;
    const buffer = get.buffers[0];
    if (size > SMALL_FILE_BYTES || size + FRAMES_BYTES > buffer.length) {
      return undefined;
    }
    const data = encodeMessage({
      type: "data",
      size,
      offset: 0,
      mtime: before.mtime?.getTime() ?? 0,
    });
    buffer.set(data, 0);
    const body = buffer.subarray(data.length, data.length + size);
    let read = 0;
    while (read < size) {
      const n = readSync(proven.fd, body, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    // Size, times and inode as before: the bytes read are one version of
    // the file, and a cached digest is that version's.
    const after = proven.stat();
    if (read < size || !sameVersion(before, after)) {
      throw new FerryError(
        "CHANGED",
        `File changed while it was read: ${get.wirePath}`,
      );
    }
    cached = get.hashCache?.lookup(get.hostPath, before, get.algorithm);
    let digest = cached;
    if (digest === undefined) {
      digest = await digestOf(get.algorithm, body);
      get.hashCache?.store(
        get.hostPath,
        before,
        get.algorithm,
        digest,
        observedAt,
      );
    }
    const hash = encodeMessage({ type: "hash", digest });
    buffer.set(hash, data.length + size);
    frame = buffer.subarray(0, data.length + size + hash.length);
  } finally {
    closeSync(proven.fd);
  }
  await writeAll(get.conn, frame);
  return { bytes: size, cached: cached !== undefined };
}

/** What {@linkcode sendSmallHeld} needs of the server. */
export interface SmallHeldGet {
  /** The binding (strict mode). */
  libc: Libc;
  /** The connection's held folder. */
  held: HeldFolder;
  /** The wire path. */
  wirePath: string;
  /** The connection. */
  conn: ByteWriter;
  /** The request's bulk buffers, sized for that many bytes. */
  buffers: (bytes: number) => BulkBuffers;
  /** The session's digest algorithm. */
  algorithm: DigestAlgorithm;
}

/** Raw `struct stat` buffers of {@linkcode readHeld} (synchronous use). */
let statBefore: Uint8Array<ArrayBuffer> | undefined;
let statAfter: Uint8Array<ArrayBuffer> | undefined;

/**
 * The strict-mode fast path of a small `GET` (libc and `/proc/self/fd`
 * available): the file is opened with `openat(O_NOFOLLOW | O_NONBLOCK)` in
 * its folder, which the connection holds open across requests
 * ({@linkcode HeldFolder}, walked from the root without following a link),
 * and kept only if the kernel's name of its descriptor is exactly the
 * requested path below the root: the same proof as
 * {@linkcode openProvenSync}'s, without resolving the path first (about 6
 * system calls a file instead of 17). No hash cache: hashing at most
 * {@linkcode SMALL_FILE_BYTES} costs about what a lookup and a store do.
 *
 * Anything else (a link on the way or at the file, which the path by name
 * follows inside the root; a missing name; a file too large; a held folder
 * renamed since) returns `undefined` with nothing sent: the caller answers
 * by name, with that path's checks and errors.
 *
 * @param get The request and the connection.
 * @returns The bytes sent, or `undefined` when the fast path does not
 * apply.
 * @throws {FerryError} `FORBIDDEN` for a temporary's name or something
 * other than a regular file, `CHANGED` if the file changed while it was
 * read; nothing was sent then. Errors of the write itself are the
 * connection's.
 */
export async function sendSmallHeld(
  get: SmallHeldGet,
): Promise<number | undefined> {
  const read = readHeld(
    get.libc,
    get.held,
    get.wirePath,
    (size) => get.buffers(size + FRAMES_BYTES)[0],
  );
  if (read === undefined) return undefined;
  const { buffer, size } = read;
  const end = DATA_FRAME_BYTES + size;
  const digest = await digestOf(
    get.algorithm,
    buffer.subarray(DATA_FRAME_BYTES, end),
  );
  const hash = writeHashFrame(buffer, end, digest);
  await writeAll(get.conn, buffer.subarray(0, end + hash));
  return size;
}

/** What {@linkcode answerHeldNow} needs. */
export interface HeldNow {
  /** The binding (strict mode). */
  libc: Libc;
  /** The connection's held folder. */
  held: HeldFolder;
  /** The wire path. */
  wirePath: string;
  /**
   * Where the whole reply is written (`ReplyBatch.room`), asked for only
   * once the file is known to be small: at least
   * {@linkcode SMALL_FILE_BYTES} and {@linkcode FRAMES_BYTES}.
   */
  into: () => Uint8Array;
  /** The session's digest algorithm. */
  algorithm: DigestAlgorithm;
}

/**
 * {@linkcode sendSmallHeld} without an `await`, for a run of pipelined
 * `GET`s of small files: the whole reply (`DATA`, bytes, `HASH`) is
 * written into `into()`, where the connection's held replies continue
 * (`ReplyBatch.room`, not asked for a larger file), with native XXH3 only. Every failure, including
 * the refusals `sendSmallHeld` reports, returns `undefined`: the caller
 * then answers the same request by the path that reports it.
 *
 * @param get The request and where its reply goes.
 * @returns The bytes of the reply written into `into()` and the file's
 * size, or `undefined` (nothing to send: answer it the other way).
 */
export function answerHeldNow(
  get: HeldNow,
): { reply: number; size: number } | undefined {
  if (get.algorithm !== "xxh3-128") return undefined;
  const xxh3 = nativeXxh3();
  if (xxh3 === undefined) return undefined;
  let read: { buffer: Uint8Array; size: number } | undefined;
  try {
    read = readHeld(get.libc, get.held, get.wirePath, get.into);
  } catch {
    return undefined;
  }
  if (read === undefined) return undefined;
  const { buffer, size } = read;
  const end = DATA_FRAME_BYTES + size;
  const digest = xxh3.hash(buffer.subarray(DATA_FRAME_BYTES, end));
  return { reply: end + writeHashFrame(buffer, end, digest), size };
}

/**
 * Opens, proves and reads a small file in the held folder (see
 * {@linkcode sendSmallHeld}): `DATA` and the bytes are written into the
 * buffer `bufferFor` gives for the file's size, from its start.
 * `undefined` where the fast path does not apply.
 */
function readHeld(
  libc: Libc,
  held: HeldFolder,
  wirePath: string,
  bufferFor: (size: number) => Uint8Array,
): { buffer: Uint8Array; size: number } | undefined {
  const segments = splitWirePath(wirePath);
  const name = segments.at(-1);
  if (name === undefined) return undefined;
  let fd: number;
  try {
    fd = libc.openFileAt(
      held.open(segments, segments.length - 1, wirePath),
      name,
    );
  } catch {
    return undefined;
  }
  try {
    if (!held.names(fd, wirePath)) {
      held.close(); // renamed, or reached otherwise: walk again
      return undefined;
    }
    refuseTempName(segments, wirePath);
    statBefore ??= new Uint8Array(libc.statBytes);
    statAfter ??= new Uint8Array(libc.statBytes);
    const before = libc.statFd(fd, statBefore);
    if (!before.isFile) {
      throw new FerryError("FORBIDDEN", `Not a file: ${wirePath}`);
    }
    const size = before.size;
    if (size > SMALL_FILE_BYTES) return undefined;
    const buffer = bufferFor(size);
    if (size + FRAMES_BYTES > buffer.length) return undefined;
    const data = writeDataFrame(buffer, 0, {
      type: "data",
      size,
      offset: 0,
      mtime: before.mtime,
    });
    const body = buffer.subarray(data, data + size);
    let read = 0;
    while (read < size) {
      const n = libc.readAt(fd, read === 0 ? body : body.subarray(read), read);
      if (n === 0) break;
      read += n;
    }
    libc.statFdRaw(fd, statAfter);
    if (read < size || !libc.sameVersion(statBefore, statAfter)) {
      throw new FerryError(
        "CHANGED",
        `File changed while it was read: ${wirePath}`,
      );
    }
    return { buffer, size };
  } finally {
    libc.close(fd);
  }
}
