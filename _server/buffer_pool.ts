/**
 * A server-wide pool of bulk buffers, so that memory follows the bytes of
 * the transfers in progress rather than the number of connections, and stays
 * bounded however many transfers run at once.
 *
 * A connection takes buffers when a request first needs them (once per
 * transfer, never per chunk), sized to what the request moves, and gives
 * them back when the request is over; idle connections and those between
 * requests hold none. Three rules keep memory in check:
 *
 * - **Sized to the file.** A transfer of `n` bytes gets one buffer of the
 *   next power of two at or above `n` (at least {@linkcode MIN_BUFFER_BYTES},
 *   at most `BULK_BUFFER_BYTES`, 1 MiB), and a second one (for overlapping
 *   reads and writes) only when the file does not fit in the first. A
 *   1 MiB get takes 1 MiB, a 4 KiB one 64 KiB, a 1 GiB one 2 × 1 MiB.
 * - **A budget.** Buffers in use add up to at most `budgetBytes`
 *   ({@linkcode DEFAULT_BUDGET_BYTES}, 16 MiB); a transfer that would pass
 *   it gets smaller buffers (halved down to {@linkcode MIN_BUFFER_BYTES}),
 *   and past it a single {@linkcode MIN_BUFFER_BYTES} one (reads and
 *   writes then take turns), so 200 concurrent transfers hold about
 *   16 MiB + 200 × 64 KiB, not 200 MiB. Nothing waits: a transfer with a
 *   small buffer is slower per chunk, not stalled.
 * - **A bounded free list.** Up to `maxFreeBytes` of given-back buffers
 *   ({@linkcode DEFAULT_MAX_FREE_BYTES}, 16 MiB) are kept for the next
 *   transfers; beyond that they are left to the garbage collector.
 *
 * @module
 */

import {
  BULK_BUFFER_BYTES,
  bulkBuffer,
  type BulkBuffers,
} from "../_common/copy.ts";

/** Smallest buffer handed out: 64 KiB. */
export const MIN_BUFFER_BYTES: number = 64 * 1024;

/** Bytes of buffers in use beyond which transfers get smaller ones: 16 MiB. */
export const DEFAULT_BUDGET_BYTES: number = 16 * 1024 * 1024;

/** Bytes of free buffers a pool keeps for later transfers: 16 MiB. */
export const DEFAULT_MAX_FREE_BYTES: number = 16 * 1024 * 1024;

/** The second buffer of a transfer that fits in its first one. */
const NO_SECOND: Uint8Array = new Uint8Array(0);

/** Options of {@linkcode BulkBufferPool}. */
export interface BulkBufferPoolOptions {
  /**
   * Largest buffer, in bytes (a power of two).
   *
   * @default {BULK_BUFFER_BYTES}
   */
  maxBufferBytes?: number;
  /**
   * Smallest buffer, in bytes (a power of two, at most `maxBufferBytes`).
   *
   * @default {MIN_BUFFER_BYTES}
   */
  minBufferBytes?: number;
  /**
   * Bytes of buffers in use beyond which new transfers get smaller ones.
   *
   * @default {DEFAULT_BUDGET_BYTES}
   */
  budgetBytes?: number;
  /**
   * Bytes of free buffers kept for later transfers.
   *
   * @default {DEFAULT_MAX_FREE_BYTES}
   */
  maxFreeBytes?: number;
}

/**
 * Bulk buffers shared by the connections of one server.
 *
 * @example Take buffers for a 4 KiB transfer and give them back
 * ```ts
 * import assert from "node:assert/strict";
 * import { BulkBufferPool } from "./buffer_pool.ts";
 * const pool = new BulkBufferPool();
 * const buffers = pool.take(4096);
 * assert(buffers[0].length === 64 * 1024 && buffers[1].length === 0);
 * pool.give(buffers, true);
 * assert(pool.take(4096)[0] === buffers[0]);
 * ```
 */
export class BulkBufferPool {
  #free = new Map<number, Uint8Array[]>();
  #freeBytes = 0;
  #inUse = 0;
  #max: number;
  #min: number;
  #budget: number;
  #maxFree: number;

  /**
   * Makes an empty pool.
   *
   * @param options Buffer sizes, budget and free-list bound.
   * @throws {RangeError} If a size is not a power of two or min > max.
   */
  constructor(options: BulkBufferPoolOptions = {}) {
    this.#max = options.maxBufferBytes ?? BULK_BUFFER_BYTES;
    this.#min = Math.min(options.minBufferBytes ?? MIN_BUFFER_BYTES, this.#max);
    for (const size of [this.#max, this.#min]) {
      if (!Number.isInteger(Math.log2(size))) {
        throw new RangeError(`Buffer size must be a power of two: ${size}`);
      }
    }
    this.#budget = options.budgetBytes ?? DEFAULT_BUDGET_BYTES;
    this.#maxFree = options.maxFreeBytes ?? DEFAULT_MAX_FREE_BYTES;
  }

  /** Bytes of buffers handed out and not given back. */
  get inUseBytes(): number {
    return this.#inUse;
  }

  /** Bytes of free buffers held for later transfers. */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /**
   * Buffers for one transfer of about `bytes` bytes: one buffer that holds
   * them (the second then has length 0), or a pair for a larger transfer,
   * smaller when the pool is over its budget.
   *
   * @param bytes What the transfer moves (its largest single copy); the
   * largest buffers when unknown.
   * @returns Buffers the caller alone uses until it gives them back.
   */
  take(bytes: number = Infinity): BulkBuffers {
    let size = this.#max;
    while (size > this.#min && size / 2 >= bytes) size /= 2;
    let pair = bytes > size;
    while (
      size > this.#min && this.#inUse + (pair ? 2 : 1) * size > this.#budget
    ) {
      size /= 2;
      pair = bytes > size;
    }
    // Over budget even at the smallest size: one buffer, copied in turn.
    if (pair && this.#inUse + 2 * size > this.#budget) pair = false;
    const first = this.#buffer(size);
    const second = pair ? this.#buffer(size) : NO_SECOND;
    this.#inUse += first.length + second.length;
    return [first, second];
  }

  /**
   * Gives buffers back once nothing (no read or write in flight) uses them
   * any more, or, with `reusable` false, only their budget (the buffers go
   * to the garbage collector: a failed copy may still have a read or write
   * in flight on them).
   *
   * @param buffers Buffers from {@linkcode BulkBufferPool.take}.
   * @param reusable Whether the next transfer may use them at once.
   */
  give(buffers: BulkBuffers, reusable: boolean): void {
    for (const buffer of buffers) {
      if (buffer.length === 0) continue;
      this.#inUse -= buffer.length;
      if (!reusable || this.#freeBytes + buffer.length > this.#maxFree) {
        continue;
      }
      let list = this.#free.get(buffer.length);
      if (list === undefined) this.#free.set(buffer.length, list = []);
      list.push(buffer);
      this.#freeBytes += buffer.length;
    }
  }

  #buffer(size: number): Uint8Array {
    const reused = this.#free.get(size)?.pop();
    if (reused === undefined) return bulkBuffer(size);
    this.#freeBytes -= size;
    return reused;
  }
}
