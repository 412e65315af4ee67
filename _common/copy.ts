/**
 * The bulk data path: copy an exact number of bytes from a reader to a
 * writer while hashing them, with two reused buffers so that the digest of
 * one chunk is computed while the next read and the current write are in
 * flight.
 *
 * @module
 */

import type { Hasher } from "./digest.ts";
import { type ByteReader, type ByteWriter, writeAll } from "../protocol.ts";

/**
 * Size of each of the two bulk buffers: 1 MiB.
 */
export const BULK_BUFFER_BYTES: number = 1024 * 1024;

/**
 * Reusable buffers for {@linkcode copyHashed}: two for overlapping reads and
 * writes, or one and an empty second one for a copy that fits in the first.
 */
export type BulkBuffers = [Uint8Array, Uint8Array];

/**
 * How far past the start of its own allocation every bulk buffer begins.
 *
 * A large `ArrayBuffer` starts on a page boundary, and so does every page
 * of the page cache and of the kernel's socket buffers. On AMD Zen CPUs
 * the kernel's `rep movsb` copy (each `read`, `recv`, `write` and `send`)
 * runs 3-4x slower when its source and destination sit at the same offset
 * in their pages (4K aliasing): measured on this project's machine, 1 MiB
 * reads from tmpfs at 1.5 GB/s into a page-aligned buffer and at 5.4 GB/s
 * into the same buffer moved by 64 bytes, and a loopback socket at 1.2
 * against 3.3 GB/s. Half a page keeps the distance far from zero whatever
 * the other side's offset. Other CPUs lose nothing by it.
 */
export const BULK_BUFFER_SKEW: number = 2048;

/**
 * A buffer for bulk data: `size` bytes starting {@linkcode BULK_BUFFER_SKEW}
 * bytes into a fresh `ArrayBuffer`, so that kernel copies into and out of
 * it run at full speed (see there). Every buffer that file or socket bytes
 * go through in bulk comes from here.
 *
 * @param size Its length in bytes.
 * @returns A zero-filled buffer of `size` bytes.
 *
 * @example A 1 MiB buffer off the page boundary
 * ```ts
 * import assert from "node:assert/strict";
 * import { BULK_BUFFER_SKEW, bulkBuffer } from "./copy.ts";
 *
 * const buffer = bulkBuffer(1024 * 1024);
 * assert.equal(buffer.length, 1024 * 1024);
 * assert.equal(buffer.byteOffset, BULK_BUFFER_SKEW);
 * ```
 */
export function bulkBuffer(size: number): Uint8Array {
  if (size === 0) return new Uint8Array(0);
  const backing = new ArrayBuffer(size + BULK_BUFFER_SKEW);
  return new Uint8Array(backing, BULK_BUFFER_SKEW, size);
}

/** Makes a pair of bulk buffers of `size` bytes each. */
export function makeBulkBuffers(size: number = BULK_BUFFER_BYTES): BulkBuffers {
  return [bulkBuffer(size), bulkBuffer(size)];
}

/**
 * Chunks at least this long are hashed on another thread where the hasher
 * can ({@linkcode Hasher.updateInBackground}); shorter ones are not worth
 * the thread hop.
 */
export const BACKGROUND_HASH_BYTES: number = 256 * 1024;

/** What {@linkcode copyHashed} needs of a hasher. */
export type CopyHasher = Pick<Hasher, "update" | "updateInBackground">;

/**
 * Copies exactly `count` bytes from `source` to `sink` (or fewer when the
 * source ends first), feeding every byte to `hash` (when given) in order.
 * With two buffers, each chunk is written and hashed while the next is
 * read (hashed on another thread where the hasher can, see
 * {@linkcode BACKGROUND_HASH_BYTES}).
 *
 * @param source Where bytes come from.
 * @param sink Where bytes go; `undefined` only hashes.
 * @param count How many bytes to move.
 * @param hash Running digest, updated with every byte moved.
 * @param buffers Reused buffers (a second of length 0: one at a time).
 * @param onChunk Called after each chunk with the running total.
 * @returns The number of bytes moved: `count`, or less if the source ended.
 */
export async function copyHashed(
  source: ByteReader,
  sink: ByteWriter | undefined,
  count: number,
  hash: CopyHasher | undefined,
  buffers: BulkBuffers,
  onChunk?: (done: number) => void,
): Promise<number> {
  let [current, next] = buffers;
  let done = 0;
  if (count === 0) return 0;
  // One buffer (the second is empty, or not needed): read, then write, in
  // turn; with two, the next read overlaps the current write.
  if (next.length === 0) {
    return await copyInTurn(source, sink, count, hash, current, onChunk);
  }
  let reading = source.read(window(current, count));
  let writing: Promise<void> | undefined;
  let hashing: Promise<void> | undefined;
  try {
    while (true) {
      const n = await reading;
      if (n === null || n === 0) break;
      done += n;
      const chunk = n === current.length ? current : current.subarray(0, n);
      // The previous chunk's write and hash used `next`: both must finish
      // before `next` is read into again (and hashes go in order).
      await writing;
      await hashing;
      if (done < count) reading = source.read(window(next, count - done));
      writing = sink ? writeAll(sink, chunk) : undefined;
      // A failing write may settle while the next read is awaited: mark it
      // handled now (it is still awaited, and rethrown, below) so that it
      // can never surface as an unhandled rejection, which ends a Deno
      // process.
      writing?.catch(ignore);
      hashing = hashChunk(hash, chunk);
      hashing?.catch(ignore);
      onChunk?.(done);
      if (done >= count) break;
      const swap = current;
      current = next;
      next = swap;
    }
    await writing;
    await hashing;
    return done;
  } finally {
    // Whatever failed, no hash may still be reading a buffer (or the
    // hasher's state) once the caller has them back.
    await hashing?.catch(ignore);
  }
}

/** Feeds `chunk` to `hash`: on another thread when long enough and able. */
function hashChunk(
  hash: CopyHasher | undefined,
  chunk: Uint8Array,
): Promise<void> | undefined {
  if (hash === undefined) return undefined;
  if (
    hash.updateInBackground !== undefined &&
    chunk.length >= BACKGROUND_HASH_BYTES
  ) {
    return hash.updateInBackground(chunk);
  }
  hash.update(chunk);
  return undefined;
}

/** {@linkcode copyHashed} with a single buffer. */
async function copyInTurn(
  source: ByteReader,
  sink: ByteWriter | undefined,
  count: number,
  hash: CopyHasher | undefined,
  buffer: Uint8Array,
  onChunk: ((done: number) => void) | undefined,
): Promise<number> {
  let done = 0;
  while (done < count) {
    const n = await source.read(window(buffer, count - done));
    if (n === null || n === 0) return done;
    const chunk = n === buffer.length ? buffer : buffer.subarray(0, n);
    if (sink) await writeAll(sink, chunk);
    hash?.update(chunk);
    done += n;
    onChunk?.(done);
  }
  return done;
}

function ignore(): void {}

function window(buffer: Uint8Array, remaining: number): Uint8Array {
  return remaining >= buffer.length ? buffer : buffer.subarray(0, remaining);
}
