import assert from "node:assert/strict";
import { BulkBufferPool } from "./buffer_pool.ts";

const KIB = 1024;

Deno.test("BulkBufferPool.take() sizes one buffer to the transfer and pairs only larger ones", () => {
  const pool = new BulkBufferPool({ budgetBytes: 64 * 1024 * KIB });
  const lengths = (bytes?: number) => pool.take(bytes).map((b) => b.length);
  assert.deepEqual(lengths(1), [64 * KIB, 0]);
  assert.deepEqual(lengths(64 * KIB + 1), [128 * KIB, 0]);
  assert.deepEqual(lengths(1024 * KIB), [1024 * KIB, 0]);
  assert.deepEqual(lengths(1024 * KIB + 1), [1024 * KIB, 1024 * KIB]);
  assert.deepEqual(lengths(), [1024 * KIB, 1024 * KIB]);
});

Deno.test("BulkBufferPool.take() halves the buffers of transfers near the budget, down to the minimum", () => {
  const near = new BulkBufferPool({ budgetBytes: 1536 * KIB });
  near.take(1024 * KIB);
  assert.deepEqual(near.take(4096 * KIB).map((b) => b.length), [
    256 * KIB,
    256 * KIB,
  ]);
});

Deno.test("BulkBufferPool.take() gives one smallest buffer to transfers past the budget", () => {
  const pool = new BulkBufferPool({ budgetBytes: 2048 * KIB });
  const first = pool.take(1024 * KIB);
  const second = pool.take(1024 * KIB);
  assert.deepEqual([first[0].length, second[0].length], [
    1024 * KIB,
    1024 * KIB,
  ]);
  assert.equal(pool.inUseBytes, 2048 * KIB);
  // Over budget: one smallest buffer (the copy takes turns).
  const third = pool.take(1024 * KIB);
  assert.deepEqual(third.map((b) => b.length), [64 * KIB, 0]);
  pool.give(first, true);
  pool.give(second, false);
  pool.give(third, true);
  assert.equal(pool.inUseBytes, 0);
  // The budget is free again: full size.
  assert.equal(pool.take(1024 * KIB)[0].length, 1024 * KIB);
});

Deno.test("BulkBufferPool.give() reuses buffers given back as reusable, up to maxFreeBytes", () => {
  const pool = new BulkBufferPool({ maxFreeBytes: 128 * KIB });
  const a = pool.take(10);
  const b = pool.take(10);
  const c = pool.take(10);
  pool.give(a, true);
  pool.give(b, true);
  pool.give(c, true); // over maxFreeBytes: dropped
  assert.equal(pool.freeBytes, 128 * KIB);
  const again = new Set([pool.take(10)[0], pool.take(10)[0], pool.take(10)[0]]);
  assert.ok(again.has(a[0]) && again.has(b[0]) && !again.has(c[0]));
  // Not reusable: never handed out again.
  const d = pool.take(10);
  pool.give(d, false);
  assert.notEqual(pool.take(10)[0], d[0]);
});
