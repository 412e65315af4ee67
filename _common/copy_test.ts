import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  BACKGROUND_HASH_BYTES,
  BULK_BUFFER_BYTES,
  type BulkBuffers,
  copyHashed,
  makeBulkBuffers,
} from "./copy.ts";
import type { ByteReader, ByteWriter } from "../protocol.ts";
import { Prng, seededRandom, sha256Hex } from "../tests/_util/util.ts";

const BUFFER = 16;
const COUNTS = [0, 1, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 7];

function pattern(length: number, seed = 1): Uint8Array {
  return new Prng(seed).bytes(length);
}

/**
 * Serves `data`, optionally in random short reads, and counts the bytes it
 * handed out.
 */
class MemoryReader implements ByteReader {
  #data: Uint8Array;
  #random?: (limit: number) => number;
  handedOut = 0;
  reads = 0;

  constructor(data: Uint8Array, random?: (limit: number) => number) {
    this.#data = data;
    this.#random = random;
  }

  read(p: Uint8Array): Promise<number | null> {
    this.reads++;
    const left = this.#data.length - this.handedOut;
    if (left === 0) return Promise.resolve(null);
    let n = Math.min(p.length, left);
    if (this.#random) n = 1 + this.#random(n);
    p.set(this.#data.subarray(this.handedOut, this.handedOut + n));
    this.handedOut += n;
    return Promise.resolve(n);
  }
}

/** Collects what it is given, optionally taking random partial writes. */
class CollectingWriter implements ByteWriter {
  #chunks: Uint8Array[] = [];
  #random?: (limit: number) => number;

  constructor(random?: (limit: number) => number) {
    this.#random = random;
  }

  write(p: Uint8Array): Promise<number> {
    const n = this.#random ? 1 + this.#random(p.length) : p.length;
    this.#chunks.push(p.slice(0, n));
    return Promise.resolve(n);
  }

  get bytes(): Uint8Array {
    const all = new Uint8Array(
      this.#chunks.reduce((sum, chunk) => sum + chunk.length, 0),
    );
    let at = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  }
}

function smallBuffers(): BulkBuffers {
  return makeBulkBuffers(BUFFER);
}

Deno.test("copyHashed() copies and hashes exactly count bytes across short reads", async () => {
  for (const count of COUNTS) {
    for (const seed of [1, 2, 3]) {
      const data = pattern(count + 50, seed);
      const source = new MemoryReader(data, seededRandom(seed));
      const sink = new CollectingWriter(seededRandom(seed + 100));
      const hash = createHash("sha256");
      const moved = await copyHashed(source, sink, count, hash, smallBuffers());
      const label = `count ${count}, seed ${seed}`;
      assert.equal(moved, count, label);
      assert.deepEqual(sink.bytes, data.subarray(0, count), label);
      assert.equal(
        hash.digest("hex"),
        sha256Hex(data.subarray(0, count)),
        label,
      );
    }
  }
});

Deno.test("copyHashed() with one buffer and an empty second copies in turn, across short reads", async () => {
  for (const count of COUNTS) {
    for (const seed of [4, 5]) {
      const data = pattern(count + 9, seed);
      const source = new MemoryReader(data, seededRandom(seed));
      const sink = new CollectingWriter(seededRandom(seed + 100));
      const hash = createHash("sha256");
      const buffers: BulkBuffers = [new Uint8Array(BUFFER), new Uint8Array(0)];
      const moved = await copyHashed(source, sink, count, hash, buffers);
      const label = `count ${count}, seed ${seed}`;
      assert.equal(moved, count, label);
      assert.deepEqual(sink.bytes, data.subarray(0, count), label);
      assert.equal(hash.digest("hex"), sha256Hex(data.subarray(0, count)));
    }
  }
  // A source that ends early: what came is reported.
  const short = new MemoryReader(pattern(5));
  const buffers: BulkBuffers = [new Uint8Array(BUFFER), new Uint8Array(0)];
  assert.equal(await copyHashed(short, undefined, 9, undefined, buffers), 5);
});

Deno.test("copyHashed() copies with full reads and full writes", async () => {
  for (const count of COUNTS) {
    const data = pattern(count, count);
    const sink = new CollectingWriter();
    const hash = createHash("sha256");
    const source = new MemoryReader(data);
    const moved = await copyHashed(source, sink, count, hash, smallBuffers());
    assert.equal(moved, count);
    assert.deepEqual(sink.bytes, data);
    assert.equal(hash.digest("hex"), sha256Hex(data));
    // Full buffers: one read per buffer, no read after the last byte.
    assert.equal(source.reads, Math.ceil(count / BUFFER), `count ${count}`);
  }
});

Deno.test("copyHashed() does not read past count", async () => {
  for (const count of COUNTS) {
    const data = pattern(count + 100);
    const source = new MemoryReader(data, seededRandom(count + 1));
    await copyHashed(
      source,
      new CollectingWriter(),
      count,
      undefined,
      smallBuffers(),
    );
    assert.equal(source.handedOut, count, `count ${count}`);
    // The rest is still there for whoever reads next.
    const rest = new Uint8Array(200);
    let got = 0;
    while (true) {
      const n = await source.read(rest.subarray(got));
      if (n === null) break;
      got += n;
    }
    assert.deepEqual(rest.subarray(0, got), data.subarray(count));
  }
});

Deno.test("copyHashed() returns the short count when the source ends early", async () => {
  for (const available of [0, 1, BUFFER, 2 * BUFFER + 3]) {
    const data = pattern(available);
    const sink = new CollectingWriter();
    const hash = createHash("sha256");
    const moved = await copyHashed(
      new MemoryReader(data, seededRandom(available)),
      sink,
      available + 10,
      hash,
      smallBuffers(),
    );
    assert.equal(moved, available);
    assert.deepEqual(sink.bytes, data);
    assert.equal(hash.digest("hex"), sha256Hex(data));
  }
});

Deno.test("copyHashed() only hashes when there is no sink", async () => {
  const data = pattern(3 * BUFFER + 7);
  const hash = createHash("sha256");
  const source = new MemoryReader(data, seededRandom(5));
  const moved = await copyHashed(
    source,
    undefined,
    data.length,
    hash,
    smallBuffers(),
  );
  assert.equal(moved, data.length);
  assert.equal(source.handedOut, data.length);
  assert.equal(hash.digest("hex"), sha256Hex(data));
});

Deno.test("copyHashed() reports a running total that rises to count", async () => {
  for (const count of COUNTS) {
    const totals: number[] = [];
    const moved = await copyHashed(
      new MemoryReader(pattern(count + 5), seededRandom(count)),
      new CollectingWriter(),
      count,
      undefined,
      smallBuffers(),
      (done) => totals.push(done),
    );
    assert.equal(moved, count);
    if (count === 0) {
      assert.deepEqual(totals, []);
      continue;
    }
    for (let i = 1; i < totals.length; i++) {
      assert.ok(totals[i] > totals[i - 1], `totals ${totals}`);
    }
    assert.ok(totals[0] > 0);
    assert.equal(totals.at(-1), count);
  }
});

Deno.test("copyHashed() never reads into a buffer that a pending write still uses", async () => {
  // The writer looks at its bytes only when its write completes, a few
  // turns later; the reader fills its buffer at once. Reusing a buffer too
  // early would corrupt the output.
  const data = pattern(10 * BUFFER + 3, 9);
  const random = seededRandom(11);
  const chunks: Uint8Array[] = [];
  const lazyWriter: ByteWriter = {
    async write(p) {
      for (let i = random(4); i >= 0; i--) await Promise.resolve();
      const n = 1 + random(p.length);
      chunks.push(p.slice(0, n));
      return n;
    },
  };
  const hash = createHash("sha256");
  const moved = await copyHashed(
    new MemoryReader(data, seededRandom(12)),
    lazyWriter,
    data.length,
    hash,
    smallBuffers(),
  );
  assert.equal(moved, data.length);
  const out = new Uint8Array(data.length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  assert.equal(at, data.length);
  assert.deepEqual(out, data);
  assert.equal(hash.digest("hex"), sha256Hex(data));
});

Deno.test("copyHashed() rejects when the sink fails while a read is pending", async () => {
  // The second read completes in a later turn of the event loop, after the
  // write has failed: that failure must reach the caller, not escape as an
  // unhandled rejection.
  let reads = 0;
  const source: ByteReader = {
    read(p) {
      reads++;
      p.fill(reads);
      if (reads === 1) return Promise.resolve(p.length);
      return new Promise((resolve) => setTimeout(() => resolve(p.length), 0));
    },
  };
  const sink: ByteWriter = {
    write: () => Promise.reject(new Error("broken pipe")),
  };
  await assert.rejects(
    copyHashed(source, sink, 10 * BUFFER, undefined, smallBuffers()),
    /broken pipe/,
  );
});

Deno.test("copyHashed() rejects when the source fails while a write is pending", async () => {
  const writeSettled = Promise.withResolvers<void>();
  let reads = 0;
  const source: ByteReader = {
    read(p) {
      reads++;
      if (reads === 1) return Promise.resolve(p.length);
      return Promise.reject(new Error("connection reset"));
    },
  };
  // The pending write fails too, later: that must not escape either.
  const sink: ByteWriter = {
    write: () =>
      new Promise((_, reject) =>
        setTimeout(() => {
          reject(new Error("broken pipe"));
          writeSettled.resolve();
        }, 0)
      ),
  };
  await assert.rejects(
    copyHashed(source, sink, 10 * BUFFER, undefined, smallBuffers()),
    /connection reset/,
  );
  await writeSettled.promise;
});

Deno.test("copyHashed() moves nothing and reads nothing for count 0", async () => {
  const source = new MemoryReader(pattern(10));
  const hash = createHash("sha256");
  assert.equal(
    await copyHashed(source, new CollectingWriter(), 0, hash, smallBuffers()),
    0,
  );
  assert.equal(source.reads, 0);
  assert.equal(hash.digest("hex"), sha256Hex(new Uint8Array(0)));
});

Deno.test("makeBulkBuffers() makes two distinct buffers of the asked size", () => {
  const [a, b] = makeBulkBuffers();
  assert.equal(a.length, BULK_BUFFER_BYTES);
  assert.equal(b.length, BULK_BUFFER_BYTES);
  assert.notEqual(a.buffer, b.buffer);
  assert.ok(BULK_BUFFER_BYTES >= 256 * 1024);
  const [c, d] = makeBulkBuffers(BUFFER);
  assert.equal(c.length, BUFFER);
  assert.equal(d.length, BUFFER);
});

/**
 * A hasher whose background updates settle only when the test lets them,
 * recording the order in which chunks were fed.
 */
class GatedHasher {
  fed: string[] = [];
  pending: (() => void)[] = [];
  update(chunk: Uint8Array): void {
    this.fed.push(`now:${chunk[0]}:${chunk.length}`);
  }
  updateInBackground(chunk: Uint8Array): Promise<void> {
    this.fed.push(`bg:${chunk[0]}:${chunk.length}`);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  release(): void {
    for (const resolve of this.pending.splice(0)) resolve();
  }
}

Deno.test("copyHashed() hashes long chunks in the background, in order, and waits for each before reusing its buffer", async () => {
  const size = BACKGROUND_HASH_BYTES;
  const data = new Uint8Array(3 * size + 10);
  for (let i = 0; i < 4; i++) data.fill(i + 1, i * size, (i + 1) * size);
  const hash = new GatedHasher();
  const sink = new CollectingWriter();
  let settled = false;
  const copying = copyHashed(
    new MemoryReader(data),
    sink,
    data.length,
    hash,
    makeBulkBuffers(size),
  ).finally(() => settled = true);
  // Release each background hash only once the copy waits on it: the
  // next chunk cannot be fed (nor its buffer refilled) before.
  for (let turn = 0; turn < 1000 && !settled; turn++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert(hash.pending.length <= 1, "one background hash at a time");
    hash.release();
  }
  assert(settled, "the copy finished");
  assert.equal(await copying, data.length);
  assert.deepEqual(sink.bytes, data);
  assert.deepEqual(hash.fed, [
    `bg:1:${size}`,
    `bg:2:${size}`,
    `bg:3:${size}`,
    "now:4:10", // too short for a thread hop
  ]);
});

Deno.test("copyHashed() settles a failed copy only after its background hash is done", async () => {
  const size = BACKGROUND_HASH_BYTES;
  let reads = 0;
  const source: ByteReader = {
    read(p) {
      reads++;
      if (reads === 1) return Promise.resolve(p.length);
      return Promise.reject(new Error("connection reset"));
    },
  };
  const hash = new GatedHasher();
  let settled = false;
  const copying = copyHashed(
    source,
    undefined,
    4 * size,
    hash,
    makeBulkBuffers(size),
  ).finally(() => settled = true);
  copying.catch(() => {});
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.equal(hash.pending.length, 1);
  assert(!settled, "still waiting for the hash that reads a buffer");
  hash.release();
  await assert.rejects(copying, /connection reset/);
});
