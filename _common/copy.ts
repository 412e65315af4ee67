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

/** Makes a pair of bulk buffers of `size` bytes each. */
export function makeBulkBuffers(size: number = BULK_BUFFER_BYTES): BulkBuffers {
  return [new Uint8Array(size), new Uint8Array(size)];
}

/**
 * Copies exactly `count` bytes from `source` to `sink` (or fewer when the
 * source ends first), feeding every byte to `hash` (when given) in order.
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
  hash: Pick<Hasher, "update"> | undefined,
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
  while (true) {
    const n = await reading;
    if (n === null || n === 0) {
      await writing;
      return done;
    }
    done += n;
    const chunk = n === current.length ? current : current.subarray(0, n);
    // The previous chunk's write used `next`: it must finish before `next`
    // is read into again.
    await writing;
    if (done < count) reading = source.read(window(next, count - done));
    writing = sink ? writeAll(sink, chunk) : undefined;
    // A failing write may settle while the next read is awaited: mark it
    // handled now (it is still awaited, and rethrown, below) so that it can
    // never surface as an unhandled rejection, which ends a Deno process.
    writing?.catch(ignore);
    hash?.update(chunk);
    onChunk?.(done);
    if (done >= count) {
      await writing;
      return done;
    }
    const swap = current;
    current = next;
    next = swap;
  }
}

/** {@linkcode copyHashed} with a single buffer. */
async function copyInTurn(
  source: ByteReader,
  sink: ByteWriter | undefined,
  count: number,
  hash: Pick<Hasher, "update"> | undefined,
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
