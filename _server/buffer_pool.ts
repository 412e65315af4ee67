/**
 * A server-wide pool of bulk buffer pairs, so that memory follows the
 * number of transfers in progress rather than the number of connections.
 *
 * A connection takes a pair when a request first needs one (once per
 * transfer, never per chunk) and gives it back when the request is over;
 * idle connections and those between requests hold none. Up to
 * {@linkcode DEFAULT_POOL_PAIRS} free pairs are kept for the next transfers;
 * beyond that a new pair is allocated and, once given back, left to the
 * garbage collector.
 *
 * @module
 */

import { type BulkBuffers, makeBulkBuffers } from "../_common/copy.ts";

/** How many free pairs a pool keeps unless told otherwise. */
export const DEFAULT_POOL_PAIRS = 16;

/**
 * Free bulk buffer pairs, shared by the connections of one server.
 *
 * @example Take a pair for one transfer and give it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { BulkBufferPool } from "./buffer_pool.ts";
 * const pool = new BulkBufferPool(1);
 * const buffers = pool.take();
 * pool.give(buffers);
 * assert(pool.take() === buffers);
 * ```
 */
export class BulkBufferPool {
  #free: BulkBuffers[] = [];
  #maxFree: number;
  #size: number | undefined;

  /**
   * Makes an empty pool.
   *
   * @param maxFree How many free pairs to keep at most.
   * @param size Bytes of each buffer (default: `BULK_BUFFER_BYTES`).
   */
  constructor(maxFree: number = DEFAULT_POOL_PAIRS, size?: number) {
    this.#maxFree = maxFree;
    this.#size = size;
  }

  /** How many free pairs the pool holds now. */
  get free(): number {
    return this.#free.length;
  }

  /**
   * A pair for one transfer: a free one, or a new one.
   *
   * @returns Two buffers the caller alone uses until it gives them back.
   */
  take(): BulkBuffers {
    return this.#free.pop() ?? makeBulkBuffers(this.#size);
  }

  /**
   * Gives a pair back. Only once nothing (no read or write in flight) uses
   * it any more: the next transfer may take it at once.
   *
   * @param buffers A pair from {@linkcode BulkBufferPool.take}.
   */
  give(buffers: BulkBuffers): void {
    if (this.#free.length < this.#maxFree) this.#free.push(buffers);
  }
}
