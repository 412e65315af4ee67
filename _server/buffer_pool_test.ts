import assert from "node:assert/strict";
import { BulkBufferPool } from "./buffer_pool.ts";

Deno.test("BulkBufferPool.take() reuses a pair that was given back", () => {
  const pool = new BulkBufferPool(2, 16);
  const first = pool.take();
  assert.equal(first[0].length, 16);
  assert.equal(first[1].length, 16);
  assert.notEqual(first[0], first[1]);
  pool.give(first);
  assert.equal(pool.free, 1);
  assert.equal(pool.take(), first);
  assert.equal(pool.free, 0);
});

Deno.test("BulkBufferPool.give() keeps no more than maxFree pairs", () => {
  const pool = new BulkBufferPool(2, 16);
  const pairs = [pool.take(), pool.take(), pool.take()];
  for (const pair of pairs) pool.give(pair);
  assert.equal(pool.free, 2);
  const again = new Set([pool.take(), pool.take(), pool.take()]);
  assert.equal(again.size, 3);
  assert.ok(again.has(pairs[0]) && again.has(pairs[1]));
  assert.ok(!again.has(pairs[2]));
});
