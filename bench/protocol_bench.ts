/**
 * Micro-benchmarks of the hot paths: frame encoding and decoding, the frame
 * reader, and the hashed bulk copy loop.
 *
 * ```sh
 * deno bench bench/protocol_bench.ts
 * ```
 *
 * The bulk group compares {@linkcode copyHashed} with a plain
 * `createHash("sha256").update()` over the same bytes, so a regression in
 * the hashing path shows as a growing gap to the baseline.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { copyHashed, makeBulkBuffers } from "../_common/copy.ts";
import {
  type ByteReader,
  type ByteWriter,
  decodeFrame,
  encodeMessage,
  type Entry,
  FrameReader,
  type Message,
} from "../protocol.ts";
import { concat } from "../tests/_util/util.ts";

/** Serves `data` in reads of at most `chunk` bytes, like a socket would. */
class MemorySource implements ByteReader {
  #data: Uint8Array;
  #chunk: number;
  #at = 0;

  constructor(data: Uint8Array, chunk: number = Infinity) {
    this.#data = data;
    this.#chunk = chunk;
  }

  read(p: Uint8Array): Promise<number | null> {
    const left = this.#data.length - this.#at;
    if (left === 0) return Promise.resolve(null);
    const n = Math.min(p.length, left, this.#chunk);
    p.set(this.#data.subarray(this.#at, this.#at + n));
    this.#at += n;
    return Promise.resolve(n);
  }
}

/** Takes every byte and keeps none. */
const NULL_WRITER: ByteWriter = { write: (p) => Promise.resolve(p.length) };

// ------------------------------------------------------------ encode/decode

const GET: Message = {
  type: "get",
  path: "photos/2024/IMG_0042.jpg",
  offset: 0,
};
const GET_FRAME = encodeMessage(GET);

const ENTRIES: Message = {
  type: "entries",
  entries: Array.from({ length: 1000 }, (_, i): Entry => ({
    name: `folder ${i % 10}/file-${i}.txt`,
    kind: i % 10 === 0 ? "dir" : "file",
    size: i * 4096,
    mtime: 1_700_000_000_000 + i,
  })),
};
const ENTRIES_FRAME = encodeMessage(ENTRIES);

Deno.bench("encodeMessage() GET", { group: "GET" }, () => {
  encodeMessage(GET);
});

Deno.bench("decodeFrame() GET", { group: "GET" }, () => {
  decodeFrame(GET_FRAME);
});

Deno.bench("encodeMessage() ENTRIES of 1000", { group: "ENTRIES" }, () => {
  encodeMessage(ENTRIES);
});

Deno.bench("decodeFrame() ENTRIES of 1000", { group: "ENTRIES" }, () => {
  decodeFrame(ENTRIES_FRAME);
});

// -------------------------------------------------------------- FrameReader

const SMALL_FRAMES = 10_000;
const SMALL_KINDS: Message[] = [
  { type: "ok" },
  GET,
  { type: "end", count: 42 },
  { type: "data", size: 1 << 20, offset: 0, mtime: 1_700_000_000_000 },
  { type: "ready", offset: 0 },
  { type: "hash", digest: new Uint8Array(32) },
];
const SMALL_STREAM = concat(
  Array.from(
    { length: SMALL_FRAMES },
    (_, i) => encodeMessage(SMALL_KINDS[i % SMALL_KINDS.length]),
  ),
);

async function readFrames(chunk: number): Promise<void> {
  const reader = new FrameReader(new MemorySource(SMALL_STREAM, chunk));
  let frames = 0;
  while (await reader.readMessage() !== null) frames++;
  if (frames !== SMALL_FRAMES) throw new Error(`Read ${frames} frames`);
}

Deno.bench(
  "FrameReader 10,000 small frames, 64 KiB reads",
  { group: "FrameReader", baseline: true },
  async () => {
    await readFrames(64 * 1024);
  },
);

Deno.bench(
  "FrameReader 10,000 small frames, 1460-byte reads",
  { group: "FrameReader" },
  async () => {
    await readFrames(1460);
  },
);

// ---------------------------------------------------------------- bulk copy

const BULK_BYTES = 64 * 1024 * 1024;
const BULK = new Uint8Array(BULK_BYTES);
for (let at = 0; at < BULK.length; at += 65536) {
  crypto.getRandomValues(BULK.subarray(at, at + 65536));
}
const BUFFERS = makeBulkBuffers();
const CHUNK = BUFFERS[0].length;
const BULK_OPTIONS = { group: "bulk 64 MiB", n: 20, warmup: 3 };

Deno.bench(
  "createHash() update of 64 MiB in 1 MiB chunks",
  { ...BULK_OPTIONS, baseline: true },
  () => {
    const hash = createHash("sha256");
    for (let at = 0; at < BULK.length; at += CHUNK) {
      hash.update(BULK.subarray(at, at + CHUNK));
    }
    hash.digest();
  },
);

Deno.bench("copyHashed() 64 MiB with hash", BULK_OPTIONS, async () => {
  const hash = createHash("sha256");
  const source = new MemorySource(BULK);
  await copyHashed(source, NULL_WRITER, BULK_BYTES, hash, BUFFERS);
  hash.digest();
});

Deno.bench("copyHashed() 64 MiB without hash", BULK_OPTIONS, async () => {
  const source = new MemorySource(BULK);
  await copyHashed(source, NULL_WRITER, BULK_BYTES, undefined, BUFFERS);
});

Deno.bench("copyHashed() 64 MiB hash only, no sink", BULK_OPTIONS, async () => {
  const hash = createHash("sha256");
  const source = new MemorySource(BULK);
  await copyHashed(source, undefined, BULK_BYTES, hash, BUFFERS);
  hash.digest();
});
