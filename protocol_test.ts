import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type ByteReader,
  type ByteWriter,
  decodeFrame,
  encodeMessage,
  encodeMessageInto,
  entriesFrameBytes,
  type Entry,
  entryBytes,
  FRAME_HEADER_BYTES,
  FRAME_TYPES,
  FrameReader,
  MAGIC,
  MAX_DIGEST_BYTES,
  MAX_DIGESTS,
  MAX_EAGER_PUT_BYTES,
  MAX_FRAME_BYTES,
  MAX_NONCE_BYTES,
  MAX_PATH_BYTES,
  type Message,
  writeAll,
} from "./protocol.ts";
import { digestOf } from "./_common/digest.ts";
import { FerryError, type FerryErrorCode } from "./errors.ts";
import { concat as concatChunks, seededRandom } from "./tests/_util/util.ts";

// ---------------------------------------------------------------- helpers

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0"))
    .join("");
}

function fromHex(text: string): Uint8Array {
  const digits = text.replace(/\s+/g, "");
  const bytes = new Uint8Array(digits.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return concatChunks(parts);
}

/** `size` bytes, filled in by `write` through a big-endian view. */
function fixed(size: number, write: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(size);
  write(new DataView(bytes.buffer));
  return bytes;
}

function u16(value: number): Uint8Array {
  return fixed(2, (view) => view.setUint16(0, value));
}

function u32(value: number): Uint8Array {
  return fixed(4, (view) => view.setUint32(0, value));
}

function u64(value: bigint): Uint8Array {
  return fixed(8, (view) => view.setBigUint64(0, value));
}

function i64(value: bigint): Uint8Array {
  return fixed(8, (view) => view.setBigInt64(0, value));
}

function str16(bytes: Uint8Array): Uint8Array {
  return concat(u16(bytes.length), bytes);
}

/** A frame with a correct header around a hand-made payload. */
function frame(type: number, ...payload: Uint8Array[]): Uint8Array {
  const body = concat(...payload);
  return concat(new Uint8Array([type]), u32(body.length), body);
}

/** A validator for `assert.throws`/`assert.rejects`: a FerryError with `code`. */
function ferryError(code: FerryErrorCode): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof FerryError, `expected a FerryError: ${error}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

/**
 * A byte source that hands out the given chunks, one per read (split further
 * when the reader offers less room), then ends.
 */
class ChunkSource implements ByteReader {
  #chunks: Uint8Array[];
  #index = 0;
  #at = 0;
  /** Length of every `p` passed to `read`. */
  readonly requested: number[] = [];
  /** Every `p` passed to `read`. */
  readonly buffers: Uint8Array[] = [];

  constructor(chunks: Uint8Array[]) {
    this.#chunks = chunks.filter((chunk) => chunk.length > 0);
  }

  read(p: Uint8Array): Promise<number | null> {
    this.requested.push(p.length);
    this.buffers.push(p);
    if (this.#index === this.#chunks.length) return Promise.resolve(null);
    const chunk = this.#chunks[this.#index];
    const n = Math.min(p.length, chunk.length - this.#at);
    p.set(chunk.subarray(this.#at, this.#at + n));
    this.#at += n;
    if (this.#at === chunk.length) {
      this.#index++;
      this.#at = 0;
    }
    return Promise.resolve(n);
  }
}

function splitAt(bytes: Uint8Array, ...points: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(from, point));
    from = point;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

function bytewise(bytes: Uint8Array): Uint8Array[] {
  return Array.from(
    { length: bytes.length },
    (_, i) => bytes.subarray(i, i + 1),
  );
}

async function readAll(reader: FrameReader): Promise<Message[]> {
  const messages: Message[] = [];
  while (true) {
    const message = await reader.readMessage();
    if (message === null) return messages;
    messages.push(message);
  }
}

// ---------------------------------------------------------------- samples

const DIGEST = createHash("sha256").update("hi\n").digest();
const SEQUENCE_64 = Uint8Array.from({ length: 64 }, (_, i) => i);
const LONG_ASCII_PATH = "d/".repeat(2047) + "ab";
const LONG_ACCENTED_PATH = "é".repeat(MAX_PATH_BYTES / 2);
const LONG_EMOJI_PATH = "🚀".repeat(MAX_PATH_BYTES / 4);
const UNICODE_PATH = "dossier/été/日本語/🚀 space.txt";
const MAX = Number.MAX_SAFE_INTEGER;
const MIN = Number.MIN_SAFE_INTEGER;

/** At least one message of every type, with edge values. */
const SAMPLES: { name: string; message: Message }[] = [
  {
    name: "HELLO without a nonce",
    message: {
      type: "hello",
      minVersion: 1,
      maxVersion: 1,
      flags: 0,
      nonce: new Uint8Array(0),
    },
  },
  {
    name: "HELLO with a 64-byte nonce and extreme versions",
    message: {
      type: "hello",
      minVersion: 0,
      maxVersion: 0xffff,
      flags: 0xffff,
      nonce: SEQUENCE_64,
    },
  },
  {
    name: "HELLO with a 32-byte nonce and auth flag",
    message: {
      type: "hello",
      minVersion: 1,
      maxVersion: 1,
      flags: 1,
      nonce: new Uint8Array(32).fill(0xab),
    },
  },
  { name: "AUTH", message: { type: "auth", mac: SEQUENCE_64.slice(0, 32) } },
  { name: "OK", message: { type: "ok" } },
  {
    name: "ERROR",
    message: { type: "error", code: "NOT_FOUND", message: "Not found: a" },
  },
  {
    name: "ERROR with a 1-character code and an empty text",
    message: { type: "error", code: "X", message: "" },
  },
  {
    name: "ERROR with a 32-character code and a unicode text",
    message: { type: "error", code: "_".repeat(32), message: "Übel: 日本 🚀" },
  },
  {
    name: "LIST of the root",
    message: { type: "list", path: "", recursive: false },
  },
  {
    name: "LIST recursive",
    message: { type: "list", path: "a/b", recursive: true },
  },
  {
    name: "LIST of a maximal path",
    message: { type: "list", path: LONG_ASCII_PATH, recursive: true },
  },
  { name: "STAT of the root", message: { type: "stat", path: "" } },
  {
    name: "STAT of a unicode path",
    message: { type: "stat", path: UNICODE_PATH },
  },
  {
    name: "STAT keeps a leading byte order mark",
    message: { type: "stat", path: "\uFEFFbom.txt" },
  },
  {
    name: "STAT of a maximal 2-byte-character path",
    message: { type: "stat", path: LONG_ACCENTED_PATH },
  },
  { name: "GET", message: { type: "get", path: "hi.txt", offset: 0 } },
  {
    name: "GET of a maximal 4-byte-character path at the largest offset",
    message: { type: "get", path: LONG_EMOJI_PATH, offset: MAX },
  },
  {
    name: "PUT without mtime",
    message: {
      type: "put",
      path: "a",
      size: 0,
      overwrite: false,
      resume: false,
    },
  },
  {
    name: "PUT with every flag and a negative mtime",
    message: {
      type: "put",
      path: UNICODE_PATH,
      size: MAX,
      overwrite: true,
      resume: true,
      mtime: -1,
    },
  },
  {
    name: "PUT with mtime 0",
    message: {
      type: "put",
      path: "b",
      size: 1,
      overwrite: false,
      resume: true,
      mtime: 0,
    },
  },
  {
    name: "PUT with the smallest mtime",
    message: {
      type: "put",
      path: "c",
      size: 2,
      overwrite: true,
      resume: false,
      mtime: MIN,
    },
  },
  { name: "MKDIR without mtime", message: { type: "mkdir", path: "a/b" } },
  {
    name: "MKDIR of the root with an mtime",
    message: { type: "mkdir", path: "", mtime: 1701803076096 },
  },
  {
    name: "MKDIR with extreme mtime and a unicode path",
    message: { type: "mkdir", path: UNICODE_PATH, mtime: MIN },
  },
  {
    name: "PUT appending",
    message: {
      type: "put",
      path: "log.txt",
      size: MAX,
      overwrite: true,
      resume: false,
      append: true,
      mtime: 1,
    },
  },
  {
    name: "DELETE of a file",
    message: { type: "delete", path: "a.txt", recursive: false },
  },
  {
    name: "DELETE recursive of a unicode path",
    message: { type: "delete", path: UNICODE_PATH, recursive: true },
  },
  { name: "SUM of a whole file", message: { type: "sum", path: "a.txt" } },
  {
    name: "SUM of a prefix of 0 bytes",
    message: { type: "sum", path: "a", length: 0 },
  },
  {
    name: "SUM of the largest prefix of a maximal path",
    message: { type: "sum", path: LONG_EMOJI_PATH, length: MAX },
  },
  { name: "ENTRIES, empty", message: { type: "entries", entries: [] } },
  {
    name: "ENTRIES with edge values",
    message: {
      type: "entries",
      entries: [
        { name: "hi.txt", kind: "file", size: 3, mtime: 1701803076096 },
        { name: "", kind: "dir", size: 0, mtime: 0 },
        { name: UNICODE_PATH, kind: "file", size: MAX, mtime: MIN },
        { name: "sub/dir", kind: "dir", size: 0, mtime: MAX },
        { name: "neg", kind: "file", size: 0, mtime: -86400000 },
      ],
    },
  },
  {
    name: "ENTRIES with a maximal name",
    message: {
      type: "entries",
      entries: [{ name: LONG_ACCENTED_PATH, kind: "file", size: 1, mtime: 1 }],
    },
  },
  { name: "END of nothing", message: { type: "end", count: 0 } },
  { name: "END of the most", message: { type: "end", count: 2 ** 32 - 1 } },
  {
    name: "INFO of a file",
    message: {
      type: "info",
      entry: { name: "hi.txt", kind: "file", size: MAX, mtime: -1 },
    },
  },
  {
    name: "INFO of the root",
    message: {
      type: "info",
      entry: { name: "", kind: "dir", size: 0, mtime: 0 },
    },
  },
  {
    name: "DATA of an empty file",
    message: { type: "data", size: 0, offset: 0, mtime: 0 },
  },
  {
    name: "DATA with extreme values",
    message: { type: "data", size: MAX, offset: MAX, mtime: MIN },
  },
  {
    name: "DATA with a negative mtime",
    message: { type: "data", size: 10, offset: 3, mtime: -1 },
  },
  { name: "READY from 0", message: { type: "ready", offset: 0 } },
  {
    name: "READY from the largest offset",
    message: { type: "ready", offset: MAX },
  },
  { name: "HASH", message: { type: "hash", digest: new Uint8Array(DIGEST) } },
  {
    name: "HASH of XXH3-128 size",
    message: { type: "hash", digest: SEQUENCE_64.slice(0, 16) },
  },
  {
    name: "DIGESTS with one name",
    message: { type: "digests", algorithms: ["xxh3-128"] },
  },
  {
    name: "DIGESTS with eight names, unknown ones included",
    message: {
      type: "digests",
      algorithms: ["a", "b-2", "sha256", "x".repeat(32), "c", "d", "e", "f"],
    },
  },
];

const FRAMES = SAMPLES.map(({ message }) => encodeMessage(message));

function expectedMessages(indices: number[]): Message[] {
  return indices.map((i) => SAMPLES[i].message);
}

// ------------------------------------------------------------- round trips

Deno.test("encodeMessage() and decodeFrame() round-trip every message type", () => {
  const types = new Set(SAMPLES.map(({ message }) => message.type));
  assert.deepEqual([...types].sort(), Object.keys(FRAME_TYPES).sort());
  SAMPLES.forEach(({ name, message }, i) => {
    const bytes = FRAMES[i];
    assert.equal(bytes[0], FRAME_TYPES[message.type], name);
    const length = new DataView(bytes.buffer).getUint32(1);
    assert.equal(length, bytes.length - FRAME_HEADER_BYTES, name);
    const decoded = decodeFrame(bytes);
    assert.ok(decoded, name);
    assert.equal(decoded.size, bytes.length, name);
    assert.deepEqual(decoded.message, message, name);
  });
});

Deno.test("encodeMessage() and decodeFrame() round-trip large frames", () => {
  const many: Entry[] = Array.from({ length: 1000 }, (_, i) => ({
    name: `folder ${i % 7}/file ${i}.txt`,
    kind: i % 5 === 0 ? "dir" : "file",
    size: i * 1_000_003,
    mtime: 1_700_000_000_000 - i * 1000,
  }));
  // Fill one frame to exactly MAX_FRAME_BYTES with maximal names.
  const fixed = 4 + (1 + 8 + 8 + 2) * 255;
  const nameBytes = Math.floor((MAX_FRAME_BYTES - fixed) / 255);
  const spare = MAX_FRAME_BYTES - fixed - nameBytes * 255;
  const full: Entry[] = Array.from({ length: 255 }, (_, i) => ({
    name: String(i).padStart(nameBytes + (i < spare ? 1 : 0), "x"),
    kind: "file",
    size: i,
    mtime: i,
  }));
  const messages: Message[] = [
    { type: "entries", entries: many },
    { type: "entries", entries: full },
    { type: "error", code: "INTERNAL", message: "ä".repeat(0xffff >> 1) + "z" },
  ];
  for (const message of messages) {
    const bytes = encodeMessage(message);
    const decoded = decodeFrame(bytes);
    assert.ok(decoded);
    assert.equal(decoded.size, bytes.length);
    assert.deepEqual(decoded.message, message);
  }
  assert.equal(
    encodeMessage(messages[1]).length,
    FRAME_HEADER_BYTES + MAX_FRAME_BYTES,
  );
});

Deno.test("decodeFrame() reads a frame from a view at a non-zero byteOffset", () => {
  for (const [i, bytes] of FRAMES.entries()) {
    const backing = new Uint8Array(bytes.length + 7).fill(0xee);
    backing.set(bytes, 3);
    const decoded = decodeFrame(backing.subarray(3));
    assert.ok(decoded);
    assert.equal(decoded.size, bytes.length);
    assert.deepEqual(decoded.message, SAMPLES[i].message, SAMPLES[i].name);
  }
});

Deno.test("decodeFrame() decodes only the first of several frames", () => {
  const both = concat(FRAMES[0], FRAMES[4]);
  const first = decodeFrame(both);
  assert.ok(first);
  assert.equal(first.size, FRAMES[0].length);
  assert.deepEqual(first.message, SAMPLES[0].message);
  const second = decodeFrame(both.subarray(first.size));
  assert.deepEqual(second, { message: { type: "ok" }, size: 5 });
});

Deno.test("decodeFrame() does not share memory with its input", () => {
  const bytes = encodeMessage({
    type: "hash",
    digest: new Uint8Array(32).fill(7),
  });
  const decoded = decodeFrame(bytes);
  assert.ok(decoded?.message.type === "hash");
  bytes.fill(0);
  assert.deepEqual(decoded.message.digest, new Uint8Array(32).fill(7));
});

Deno.test("entriesFrameBytes() and entryBytes() agree with encodeMessage()", () => {
  for (const { message } of SAMPLES) {
    if (message.type === "entries") {
      const size = entriesFrameBytes(message.entries);
      assert.equal(size, encodeMessage(message).length);
    }
    if (message.type === "info") {
      const size = FRAME_HEADER_BYTES + entryBytes(message.entry);
      assert.equal(size, encodeMessage(message).length);
    }
  }
});

// --------------------------------------------------------- worked example

const EXAMPLE_MTIME = 0x18c3b5e2a00;
/** XXH3-128 of `hi\n`, as xxh128sum prints it. */
const XXH3_HI = "f4d0497cf9394caab34d1a3ab2bece70";
const EXAMPLE: { hex: string; message: Message }[] = [
  {
    hex: "00 0000000c 4645525259 0002 0002 0000 00",
    message: {
      type: "hello",
      minVersion: 2,
      maxVersion: 2,
      flags: 0,
      nonce: new Uint8Array(0),
    },
  },
  {
    hex: "04 00000011 02 08 787868332d313238 06 736861323536",
    message: { type: "digests", algorithms: ["xxh3-128", "sha256"] },
  },
  {
    hex: "04 0000000a 01 08 787868332d313238",
    message: { type: "digests", algorithms: ["xxh3-128"] },
  },
  {
    hex: "10 00000003 00 0000",
    message: { type: "list", path: "", recursive: false },
  },
  {
    hex: "20 0000001d 00000001 01 0000000000000003 0000018c3b5e2a00" +
      " 0006 68692e747874",
    message: {
      type: "entries",
      entries: [{
        name: "hi.txt",
        kind: "file",
        size: 3,
        mtime: EXAMPLE_MTIME,
      }],
    },
  },
  { hex: "21 00000004 00000001", message: { type: "end", count: 1 } },
  {
    hex: "12 00000010 0000000000000000 0006 68692e747874",
    message: { type: "get", path: "hi.txt", offset: 0 },
  },
  {
    hex: "23 00000018 0000000000000003 0000000000000000 0000018c3b5e2a00",
    message: { type: "data", size: 3, offset: 0, mtime: EXAMPLE_MTIME },
  },
  {
    hex: "25 00000010 f4d0497cf9394caab34d1a3ab2bece70",
    message: { type: "hash", digest: fromHex(XXH3_HI) },
  },
  {
    hex: "04 00000008 01 06 736861323536",
    message: { type: "digests", algorithms: ["sha256"] },
  },
  {
    hex: "25 00000020 98ea6e4f216f2fb4b69fff9b3a44842c" +
      " 38686ca685f3f55dc48c5d3fb1107be4",
    message: { type: "hash", digest: new Uint8Array(DIGEST) },
  },
];

Deno.test("encodeMessage() produces the bytes of the worked example", async () => {
  for (const { hex: expected, message } of EXAMPLE) {
    const bytes = encodeMessage(message);
    assert.equal(hex(bytes), expected.replace(/ /g, ""), message.type);
    assert.deepEqual(decodeFrame(fromHex(expected))?.message, message);
  }
  assert.equal(
    hex(DIGEST),
    "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4",
  );
  assert.equal(
    hex(await digestOf("xxh3-128", encoder.encode("hi\n"))),
    XXH3_HI,
  );
  // The server's HELLO announces a 44-byte payload: 12 fixed bytes and a
  // 32-byte nonce.
  const serverHello = encodeMessage({
    type: "hello",
    minVersion: 2,
    maxVersion: 2,
    flags: 0,
    nonce: new Uint8Array(32),
  });
  assert.equal(
    hex(serverHello.subarray(0, 17)),
    "000000002c4645525259000200020000" + "20",
  );
});

/** The hex bytes of the first `text` block after `heading` in protocol.ts. */
async function documentedBytes(heading: string): Promise<string> {
  const source = await Deno.readTextFile(
    new URL("./protocol.ts", import.meta.url),
  );
  const section = source.indexOf(heading);
  assert.ok(section > 0, `protocol.ts has a section ${heading}`);
  const open = source.indexOf("```text", section) + "```text".length;
  const block = source.slice(open, source.indexOf("```", open));
  // Each line: optional `C:`/`S:`, hex groups, then (after 2+ spaces) a
  // comment. Collect the hex groups of every line in order.
  let documented = "";
  for (const raw of block.split("\n")) {
    const line = raw.replace(/^\s*\*\s?/, "").replace(/^\s*[CS]:/, "").trim();
    for (const token of line.split(/\s{2,}/)[0].split(" ")) {
      if (!/^(?:[0-9a-f]{2})+$/.test(token)) break;
      documented += token;
    }
  }
  return documented;
}

Deno.test("protocol.ts documents the same sync example bytes", async () => {
  const conversation = concat(
    encodeMessage({ type: "sum", path: "hi.txt" }),
    encodeMessage({ type: "hash", digest: fromHex(XXH3_HI) }),
    encodeMessage({ type: "delete", path: "old", recursive: true }),
    encodeMessage({ type: "ok" }),
  );
  assert.equal(await documentedBytes("## Sync example"), hex(conversation));
  assert.equal(
    hex(encodeMessage({ type: "delete", path: "old", recursive: true })),
    "15000000060100036f6c64",
  );
});

Deno.test("decodeFrame() refuses unknown DELETE and SUM flags, a whole-file SUM with a length, and a PUT that appends and resumes", () => {
  const name = str16(encoder.encode("a"));
  for (const flags of [2, 4, 0x80, 0xff]) {
    assert.throws(
      () =>
        decodeFrame(frame(FRAME_TYPES.delete, new Uint8Array([flags]), name)),
      ferryError("BAD_REQUEST"),
      `DELETE ${flags}`,
    );
    assert.throws(
      () =>
        decodeFrame(
          frame(FRAME_TYPES.sum, new Uint8Array([flags]), u64(0n), name),
        ),
      ferryError("BAD_REQUEST"),
      `SUM ${flags}`,
    );
  }
  assert.throws(
    () =>
      decodeFrame(frame(FRAME_TYPES.sum, new Uint8Array([0]), u64(1n), name)),
    ferryError("BAD_REQUEST"),
  );
  assert.throws(
    () =>
      decodeFrame(
        frame(FRAME_TYPES.put, u64(1n), new Uint8Array([8 | 2]), i64(0n), name),
      ),
    ferryError("BAD_REQUEST"),
  );
  assert.throws(
    () =>
      encodeMessage({
        type: "put",
        path: "a",
        size: 1,
        overwrite: true,
        resume: true,
        append: true,
      }),
    RangeError,
  );
  assert.throws(
    () => encodeMessage({ type: "sum", path: "a", length: -1 }),
    RangeError,
  );
});

Deno.test("protocol.ts documents the same worked example bytes", async () => {
  const documented = await documentedBytes("## Worked example");
  const serverHello = encodeMessage({
    type: "hello",
    minVersion: 2,
    maxVersion: 2,
    flags: 0,
    nonce: new Uint8Array(32),
  }).subarray(0, FRAME_HEADER_BYTES + 12); // the nonce is "<32 random bytes>"
  const conversation = concat(
    encodeMessage(EXAMPLE[0].message),
    encodeMessage(EXAMPLE[1].message),
    serverHello,
    encodeMessage(EXAMPLE[2].message),
    ...EXAMPLE.slice(3, 8).map(({ message }) => encodeMessage(message)),
    encoder.encode("hi\n"),
    encodeMessage(EXAMPLE[8].message),
  );
  assert.equal(documented, hex(conversation));
});

// --------------------------------------------------------------- truncation

Deno.test("decodeFrame() reports a truncated header", () => {
  for (const bytes of FRAMES) {
    for (let n = 0; n < FRAME_HEADER_BYTES; n++) {
      assert.equal(decodeFrame(bytes.subarray(0, n)), undefined);
    }
  }
});

Deno.test("decodeFrame() returns undefined for every strict prefix of a frame", () => {
  FRAMES.forEach((bytes, i) => {
    for (let n = 0; n < bytes.length; n++) {
      assert.equal(
        decodeFrame(bytes.subarray(0, n)),
        undefined,
        `${SAMPLES[i].name}, ${n} bytes`,
      );
    }
  });
});

Deno.test("FrameReader.readMessage() throws TRUNCATED when the stream ends inside a frame", async () => {
  for (const [i, bytes] of FRAMES.entries()) {
    for (let n = 1; n < bytes.length; n++) {
      const reader = new FrameReader(new ChunkSource([bytes.subarray(0, n)]));
      await assert.rejects(
        reader.readMessage(),
        ferryError("TRUNCATED"),
        `${SAMPLES[i].name}, ${n} bytes`,
      );
    }
  }
  // Also after a complete frame, inside the next one.
  const reader = new FrameReader(
    new ChunkSource([concat(FRAMES[4], FRAMES[5].subarray(0, 9))]),
  );
  assert.deepEqual(await reader.readMessage(), { type: "ok" });
  await assert.rejects(reader.readMessage(), ferryError("TRUNCATED"));
});

Deno.test("FrameReader.readMessage() returns null at a clean end of stream", async () => {
  assert.equal(await new FrameReader(new ChunkSource([])).readMessage(), null);
  const reader = new FrameReader(new ChunkSource([FRAMES[0]]));
  assert.deepEqual(await reader.readMessage(), SAMPLES[0].message);
  assert.equal(await reader.readMessage(), null);
  assert.equal(await reader.readMessage(), null);
});

// ---------------------------------------------------------- how TCP splits

Deno.test("FrameReader.readMessage() decodes every message split at every byte boundary and coalesced with the next", async () => {
  for (let i = 0; i < FRAMES.length; i++) {
    const j = (i + 1) % FRAMES.length;
    const pair = concat(FRAMES[i], FRAMES[j]);
    const expected = expectedMessages([i, j]);
    // In one chunk: both messages coalesced.
    assert.deepEqual(
      await readAll(new FrameReader(new ChunkSource([pair]))),
      expected,
    );
    // In two chunks, cut everywhere: inside the first frame, at the
    // boundary, and inside the second (the first chunk then holds the
    // whole first frame and the start of the next).
    for (let cut = 1; cut < pair.length; cut++) {
      const reader = new FrameReader(new ChunkSource(splitAt(pair, cut)));
      assert.deepEqual(
        await readAll(reader),
        expected,
        `${SAMPLES[i].name}, cut at ${cut}`,
      );
    }
  }
});

Deno.test("FrameReader.readMessage() decodes every message delivered one byte per read", async () => {
  const all = concat(...FRAMES);
  const source = new ChunkSource(bytewise(all));
  assert.deepEqual(
    await readAll(new FrameReader(source)),
    SAMPLES.map((s) => s.message),
  );
  assert.equal(source.requested.length, all.length + 1);
});

Deno.test("FrameReader.readMessage() decodes a stream of every message in random chunks", async () => {
  const all = concat(...FRAMES, ...FRAMES, ...FRAMES);
  const expected = [...SAMPLES, ...SAMPLES, ...SAMPLES].map((s) => s.message);
  assert.deepEqual(
    await readAll(new FrameReader(new ChunkSource([all]))),
    expected,
  );
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = seededRandom(seed);
    const cuts: number[] = [];
    for (
      let at = random(40) + 1;
      at < all.length;
      at += random(seed * 3000) + 1
    ) {
      cuts.push(at);
    }
    const reader = new FrameReader(new ChunkSource(splitAt(all, ...cuts)));
    assert.deepEqual(await readAll(reader), expected, `seed ${seed}`);
  }
});

Deno.test("FrameReader grows its buffer for a frame larger than its initial buffer", async () => {
  const entries: Entry[] = Array.from({ length: 20_000 }, (_, i) => ({
    name: `n${i}`.padEnd(30, "-"),
    kind: "file",
    size: i,
    mtime: i,
  }));
  const big = encodeMessage({ type: "entries", entries });
  assert.ok(big.length > 512 * 1024);
  const all = concat(FRAMES[0], big, FRAMES[4], big, FRAMES[0]);
  const random = seededRandom(99);
  const cuts: number[] = [];
  for (let at = random(100) + 1; at < all.length; at += random(100_000) + 1) {
    cuts.push(at);
  }
  const source = new ChunkSource(splitAt(all, ...cuts));
  const messages = await readAll(new FrameReader(source));
  assert.deepEqual(messages, [
    SAMPLES[0].message,
    { type: "entries", entries },
    { type: "ok" },
    { type: "entries", entries },
    SAMPLES[0].message,
  ]);
  const largest = Math.max(...source.requested);
  assert.ok(
    largest <= FRAME_HEADER_BYTES + MAX_FRAME_BYTES,
    `asked for ${largest} bytes`,
  );
});

Deno.test("FrameReader does not allocate the length a bare header declares", async () => {
  // A header declaring a full-size frame, then only 10 payload bytes: the
  // reader must not grow its buffer to the declared megabyte on trust.
  const header = concat(
    new Uint8Array([FRAME_TYPES.entries]),
    u32(MAX_FRAME_BYTES),
  );
  const source = new ChunkSource([concat(header, new Uint8Array(10))]);
  await assert.rejects(
    new FrameReader(source).readMessage(),
    ferryError("TRUNCATED"),
  );
  const largest = Math.max(...source.requested);
  assert.ok(largest <= 64 * 1024, `asked for ${largest} bytes`);
});

// ------------------------------------------------------------------ limits

Deno.test("decodeFrame() reports TOO_LARGE as soon as the header declares too much", () => {
  for (const length of [MAX_FRAME_BYTES + 1, 2 ** 31, 2 ** 32 - 1]) {
    const header = concat(new Uint8Array([FRAME_TYPES.entries]), u32(length));
    assert.throws(() => decodeFrame(header), ferryError("TOO_LARGE"));
  }
  const header = concat(new Uint8Array([FRAME_TYPES.error]), u32(17));
  assert.throws(() => decodeFrame(header, 16), ferryError("TOO_LARGE"));
  assert.equal(decodeFrame(header, 17), undefined);
  const payload = encodeMessage({
    type: "error",
    code: "AB",
    message: "cdefghijklmn",
  });
  assert.equal(payload.length, FRAME_HEADER_BYTES + 17);
  assert.ok(decodeFrame(payload, 17));
  assert.throws(() => decodeFrame(payload, 16), ferryError("TOO_LARGE"));
});

Deno.test("FrameReader.readMessage() reports TOO_LARGE without waiting for the payload", async () => {
  for (const deliveries of [[5], [1, 1, 1, 1, 1], [2, 3]]) {
    const header = concat(
      new Uint8Array([FRAME_TYPES.entries]),
      u32(2 ** 32 - 1),
    );
    const requested: number[] = [];
    const waited = Promise.withResolvers<"waited">();
    let release = (): void => {};
    let at = 0;
    // Hands out the header as `deliveries` says, then blocks until released:
    // a reader that waited for the payload would block forever.
    const source: ByteReader = {
      read(p) {
        requested.push(p.length);
        const n = deliveries[requested.length - 1];
        if (n !== undefined) {
          p.set(header.subarray(at, at + n));
          at += n;
          return Promise.resolve(n);
        }
        waited.resolve("waited");
        return new Promise((resolve) => {
          release = () => resolve(null);
        });
      },
    };
    const outcome = await Promise.race([
      new FrameReader(source).readMessage().then(
        (message) => message,
        (error: unknown) => error,
      ),
      waited.promise,
    ]);
    release();
    assert.notEqual(outcome, "waited", "the reader waited for the payload");
    ferryError("TOO_LARGE")(outcome);
    assert.equal(requested.length, deliveries.length);
    for (const n of requested) {
      assert.ok(n <= FRAME_HEADER_BYTES + MAX_FRAME_BYTES);
    }
  }
});

Deno.test("FrameReader honours its maxFrameBytes option", async () => {
  const fits = encodeMessage({
    type: "error",
    code: "AB",
    message: "cdefghijklmn",
  });
  const reader = new FrameReader(new ChunkSource([fits, fits]), {
    maxFrameBytes: 17,
  });
  assert.equal((await reader.readMessage())?.type, "error");
  assert.equal((await reader.readMessage())?.type, "error");
  const small = new FrameReader(new ChunkSource([fits]), { maxFrameBytes: 16 });
  await assert.rejects(small.readMessage(), ferryError("TOO_LARGE"));
});

// --------------------------------------------------------------- malformed

Deno.test("decodeFrame() refuses unknown frame types", () => {
  const known = new Set(Object.values(FRAME_TYPES));
  let unknown = 0;
  for (let type = 0; type < 256; type++) {
    if (known.has(type)) continue;
    unknown++;
    assert.throws(() => decodeFrame(frame(type)), ferryError("BAD_REQUEST"));
    assert.throws(
      () => decodeFrame(frame(type, new Uint8Array(9))),
      ferryError("BAD_REQUEST"),
    );
  }
  assert.equal(unknown, 256 - 18);
});

Deno.test("FrameReader.readMessage() refuses an unknown frame type", async () => {
  const reader = new FrameReader(
    new ChunkSource([frame(0x7f, new Uint8Array(3))]),
  );
  await assert.rejects(reader.readMessage(), ferryError("BAD_REQUEST"));
});

Deno.test("decodeFrame() refuses trailing bytes after every message type", () => {
  FRAMES.forEach((bytes, i) => {
    // A HASH is all digest: its length is its layout (tested below).
    if (SAMPLES[i].message.type === "hash") return;
    for (const extra of [[0], [0xff, 0xff, 0xff]]) {
      const longer = frame(
        bytes[0],
        bytes.subarray(FRAME_HEADER_BYTES),
        new Uint8Array(extra),
      );
      assert.throws(
        () => decodeFrame(longer),
        ferryError("BAD_REQUEST"),
        SAMPLES[i].name,
      );
    }
  });
});

Deno.test("decodeFrame() takes a HASH of 1 to MAX_DIGEST_BYTES bytes and refuses other lengths", () => {
  for (const length of [1, 16, 32, MAX_DIGEST_BYTES]) {
    const digest = SEQUENCE_64.slice(0, length);
    assert.deepEqual(decodeFrame(frame(FRAME_TYPES.hash, digest))?.message, {
      type: "hash",
      digest,
    });
  }
  for (const length of [0, MAX_DIGEST_BYTES + 1]) {
    assert.throws(
      () => decodeFrame(frame(FRAME_TYPES.hash, new Uint8Array(length))),
      ferryError("BAD_REQUEST"),
      `${length} bytes`,
    );
  }
});

Deno.test("decodeFrame() refuses a DIGESTS with no name, too many or a malformed one", () => {
  const name = (text: string) =>
    new Uint8Array([text.length, ...encoder.encode(text)]);
  const bad = [
    frame(FRAME_TYPES.digests, new Uint8Array([0])),
    frame(
      FRAME_TYPES.digests,
      new Uint8Array([MAX_DIGESTS + 1]),
      ...Array.from({ length: MAX_DIGESTS + 1 }, () => name("sha256")),
    ),
    frame(FRAME_TYPES.digests, new Uint8Array([1]), name("SHA256")),
    frame(FRAME_TYPES.digests, new Uint8Array([1]), name("")),
    frame(FRAME_TYPES.digests, new Uint8Array([1]), name("x".repeat(33))),
    frame(FRAME_TYPES.digests, new Uint8Array([1]), name("a\x1b[31m")),
  ];
  for (const bytes of bad) {
    assert.throws(() => decodeFrame(bytes), ferryError("BAD_REQUEST"));
  }
});

Deno.test("decodeFrame() refuses every payload cut short inside its layout", () => {
  FRAMES.forEach((bytes, i) => {
    // A shorter HASH is a shorter digest (lengths tested above), but never empty.
    if (SAMPLES[i].message.type === "hash") return;
    const payload = bytes.subarray(FRAME_HEADER_BYTES);
    for (let n = 0; n < payload.length; n++) {
      const short = frame(bytes[0], payload.subarray(0, n));
      assert.throws(
        () => decodeFrame(short),
        ferryError("BAD_REQUEST"),
        `${SAMPLES[i].name}, ${n} bytes`,
      );
    }
  });
});

Deno.test("decodeFrame() refuses invalid UTF-8 in paths, names and error texts", () => {
  const invalid = [
    [0xff],
    [0xc3], // a lead byte without its continuation
    [0x80], // a lone continuation byte
    [0xc0, 0xaf], // overlong "/"
    [0xe0, 0x80, 0xaf], // overlong "/"
    [0xed, 0xa0, 0x80], // a UTF-16 surrogate
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0x61, 0x2f, 0xfe], // valid start, bad end
  ].map((bytes) => new Uint8Array(bytes));
  for (const bad of invalid) {
    const frames = [
      frame(FRAME_TYPES.stat, str16(bad)),
      frame(FRAME_TYPES.list, new Uint8Array([0]), str16(bad)),
      frame(FRAME_TYPES.get, u64(0n), str16(bad)),
      frame(FRAME_TYPES.put, u64(0n), new Uint8Array([0]), i64(0n), str16(bad)),
      frame(
        FRAME_TYPES.info,
        new Uint8Array([1]),
        u64(0n),
        i64(0n),
        str16(bad),
      ),
      frame(
        FRAME_TYPES.entries,
        u32(1),
        new Uint8Array([2]),
        u64(0n),
        i64(0n),
        str16(bad),
      ),
      frame(
        FRAME_TYPES.error,
        new Uint8Array([1]),
        encoder.encode("X"),
        str16(bad),
      ),
    ];
    for (const bytes of frames) {
      assert.throws(
        () => decodeFrame(bytes),
        ferryError("BAD_REQUEST"),
        hex(bytes),
      );
    }
  }
});

Deno.test("decodeFrame() refuses u64 values above Number.MAX_SAFE_INTEGER", () => {
  const tooBig = [2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];
  for (const value of tooBig) {
    const frames = [
      frame(FRAME_TYPES.get, u64(value), str16(new Uint8Array(0))),
      frame(FRAME_TYPES.ready, u64(value)),
      frame(
        FRAME_TYPES.put,
        u64(value),
        new Uint8Array([0]),
        i64(0n),
        str16(new Uint8Array(0)),
      ),
      frame(FRAME_TYPES.data, u64(value), u64(0n), i64(0n)),
      frame(FRAME_TYPES.data, u64(value), u64(value), i64(0n)),
      frame(
        FRAME_TYPES.info,
        new Uint8Array([1]),
        u64(value),
        i64(0n),
        str16(new Uint8Array(0)),
      ),
    ];
    for (const bytes of frames) {
      assert.throws(
        () => decodeFrame(bytes),
        ferryError("BAD_REQUEST"),
        hex(bytes),
      );
    }
  }
  const largest = decodeFrame(frame(FRAME_TYPES.ready, u64(2n ** 53n - 1n)));
  assert.deepEqual(largest?.message, { type: "ready", offset: MAX });
});

Deno.test("decodeFrame() refuses i64 times outside the safe integer range", () => {
  for (const value of [2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)]) {
    const frames = [
      frame(FRAME_TYPES.data, u64(1n), u64(0n), i64(value)),
      frame(
        FRAME_TYPES.put,
        u64(0n),
        new Uint8Array([4]),
        i64(value),
        str16(new Uint8Array(0)),
      ),
      frame(
        FRAME_TYPES.info,
        new Uint8Array([2]),
        u64(0n),
        i64(value),
        str16(new Uint8Array(0)),
      ),
    ];
    for (const bytes of frames) {
      assert.throws(
        () => decodeFrame(bytes),
        ferryError("BAD_REQUEST"),
        hex(bytes),
      );
    }
  }
  const oldest = decodeFrame(
    frame(FRAME_TYPES.data, u64(1n), u64(0n), i64(BigInt(MIN))),
  );
  assert.deepEqual(oldest?.message, {
    type: "data",
    size: 1,
    offset: 0,
    mtime: MIN,
  });
});

Deno.test("decodeFrame() refuses an entry count the payload cannot hold, before decoding entries", () => {
  const entry = concat(
    new Uint8Array([1]),
    u64(0n),
    i64(0n),
    str16(encoder.encode("a")),
  );
  for (const count of [2 ** 32 - 1, 2 ** 31, 1000, 2]) {
    const bytes = frame(FRAME_TYPES.entries, u32(count), entry);
    assert.throws(
      () => decodeFrame(bytes),
      (error: unknown) => {
        ferryError("BAD_REQUEST")(error);
        // Refused by the up-front size check, not after decoding entries.
        assert.match((error as Error).message, /count/i);
        return true;
      },
      `count ${count}`,
    );
  }
  // A count the payload can hold by size, but whose entries run out.
  const two = frame(FRAME_TYPES.entries, u32(2), entry, new Uint8Array(19));
  assert.throws(() => decodeFrame(two), ferryError("BAD_REQUEST"));
});

Deno.test("decodeFrame() refuses a HELLO with bad magic", () => {
  const rest = concat(u16(1), u16(1), u16(0), new Uint8Array([0]));
  for (const magic of ["FERRX", "ferry", "\0\0\0\0\0", "YRREF"]) {
    const bytes = frame(FRAME_TYPES.hello, encoder.encode(magic), rest);
    assert.throws(() => decodeFrame(bytes), ferryError("BAD_REQUEST"), magic);
  }
  assert.ok(decodeFrame(frame(FRAME_TYPES.hello, MAGIC, rest)));
});

Deno.test("decodeFrame() refuses a HELLO nonce longer than MAX_NONCE_BYTES", () => {
  const nonce = new Uint8Array(MAX_NONCE_BYTES + 1);
  const bytes = frame(
    FRAME_TYPES.hello,
    MAGIC,
    u16(1),
    u16(1),
    u16(0),
    new Uint8Array([nonce.length]),
    nonce,
  );
  assert.throws(() => decodeFrame(bytes), ferryError("BAD_REQUEST"));
});

Deno.test("decodeFrame() refuses malformed error codes", () => {
  for (
    const code of [
      "",
      "not_found",
      "NOT-FOUND",
      "NOT FOUND",
      "A1",
      "É",
      "A".repeat(33),
    ]
  ) {
    const bytes = encoder.encode(code);
    const wire = frame(
      FRAME_TYPES.error,
      new Uint8Array([bytes.length]),
      bytes,
      str16(new Uint8Array(0)),
    );
    assert.throws(
      () => decodeFrame(wire),
      ferryError("BAD_REQUEST"),
      JSON.stringify(code),
    );
  }
  const bad = new Uint8Array([0xff]);
  const wire = frame(
    FRAME_TYPES.error,
    new Uint8Array([1]),
    bad,
    str16(new Uint8Array(0)),
  );
  assert.throws(() => decodeFrame(wire), ferryError("BAD_REQUEST"));
});

Deno.test("decodeFrame() refuses unknown MKDIR flags and ignores an unflagged mtime", () => {
  const empty = str16(new Uint8Array(0));
  for (const flags of [2, 4, 0x80, 0xff]) {
    const mkdir = frame(
      FRAME_TYPES.mkdir,
      new Uint8Array([flags]),
      i64(0n),
      empty,
    );
    assert.throws(
      () => decodeFrame(mkdir),
      ferryError("BAD_REQUEST"),
      `MKDIR ${flags}`,
    );
  }
  const unflagged = frame(
    FRAME_TYPES.mkdir,
    new Uint8Array([0]),
    i64(123n),
    empty,
  );
  assert.deepEqual(decodeFrame(unflagged)?.message, {
    type: "mkdir",
    path: "",
  });
  const truncated = frame(FRAME_TYPES.mkdir, new Uint8Array([1]), u32(0));
  assert.throws(() => decodeFrame(truncated), ferryError("BAD_REQUEST"));
});

Deno.test("encodeMessage() and decodeFrame() carry an eager PUT of at most MAX_EAGER_PUT_BYTES that neither resumes nor appends", () => {
  const eager = {
    type: "put",
    path: "a.bin",
    size: MAX_EAGER_PUT_BYTES,
    overwrite: false,
    resume: false,
    eager: true,
  } as const;
  const bytes = encodeMessage(eager);
  assert.equal(bytes[5 + 8], 0x10, "flag bit 4");
  assert.deepEqual(decodeFrame(bytes)?.message, eager);
  for (
    const bad of [
      { ...eager, size: MAX_EAGER_PUT_BYTES + 1 },
      { ...eager, resume: true },
      { ...eager, append: true, overwrite: true },
    ]
  ) {
    assert.throws(() => encodeMessage(bad), RangeError);
    const flags = 0x10 | (bad.resume ? 2 : 0) |
      ("append" in bad ? 8 | 1 : 0);
    const put = frame(
      FRAME_TYPES.put,
      u64(BigInt(bad.size)),
      new Uint8Array([flags]),
      i64(0n),
      str16(new Uint8Array(0)),
    );
    assert.throws(() => decodeFrame(put), ferryError("BAD_REQUEST"));
  }
});

Deno.test("decodeFrame() refuses unknown LIST and PUT flags", () => {
  const empty = str16(new Uint8Array(0));
  for (const flags of [2, 4, 0x80, 0xff]) {
    const list = frame(FRAME_TYPES.list, new Uint8Array([flags]), empty);
    assert.throws(
      () => decodeFrame(list),
      ferryError("BAD_REQUEST"),
      `LIST ${flags}`,
    );
  }
  for (const flags of [0x20, 0x80, 0xff]) {
    const put = frame(
      FRAME_TYPES.put,
      u64(0n),
      new Uint8Array([flags]),
      i64(0n),
      empty,
    );
    assert.throws(
      () => decodeFrame(put),
      ferryError("BAD_REQUEST"),
      `PUT ${flags}`,
    );
  }
  // A PUT without the mtime flag ignores the mtime field.
  const put = frame(
    FRAME_TYPES.put,
    u64(5n),
    new Uint8Array([3]),
    i64(123n),
    empty,
  );
  assert.deepEqual(decodeFrame(put)?.message, {
    type: "put",
    path: "",
    size: 5,
    overwrite: true,
    resume: true,
  });
});

Deno.test("decodeFrame() refuses unknown entry kinds", () => {
  for (const kind of [0, 3, 0xff]) {
    const fields = [
      new Uint8Array([kind]),
      u64(0n),
      i64(0n),
      str16(new Uint8Array(0)),
    ];
    assert.throws(
      () => decodeFrame(frame(FRAME_TYPES.info, ...fields)),
      ferryError("BAD_REQUEST"),
    );
    assert.throws(
      () => decodeFrame(frame(FRAME_TYPES.entries, u32(1), ...fields)),
      ferryError("BAD_REQUEST"),
    );
  }
});

Deno.test("decodeFrame() refuses a DATA offset beyond its size", () => {
  const bytes = frame(FRAME_TYPES.data, u64(3n), u64(4n), i64(0n));
  assert.throws(() => decodeFrame(bytes), ferryError("BAD_REQUEST"));
});

Deno.test("decodeFrame() refuses a path longer than MAX_PATH_BYTES as TOO_LARGE", () => {
  const long = encoder.encode("a".repeat(MAX_PATH_BYTES + 1));
  assert.throws(
    () => decodeFrame(frame(FRAME_TYPES.stat, str16(long))),
    ferryError("TOO_LARGE"),
  );
  assert.throws(
    () => decodeFrame(frame(FRAME_TYPES.get, u64(0n), str16(long))),
    ferryError("TOO_LARGE"),
  );
  const fits = encoder.encode("a".repeat(MAX_PATH_BYTES));
  assert.ok(decodeFrame(frame(FRAME_TYPES.stat, str16(fits))));
});

// ---------------------------------------------------------------- encoding

Deno.test("encodeMessage() throws RangeError for out-of-range fields", () => {
  const entry: Entry = { name: "a", kind: "file", size: 0, mtime: 0 };
  const put = {
    type: "put",
    path: "a",
    overwrite: false,
    resume: false,
  } as const;
  const hello = {
    type: "hello",
    minVersion: 1,
    maxVersion: 1,
    flags: 0,
  } as const;
  const cases: [string, Message][] = [
    ["a path over MAX_PATH_BYTES", {
      type: "stat",
      path: "a".repeat(MAX_PATH_BYTES + 1),
    }],
    ["a path over MAX_PATH_BYTES in UTF-8", {
      type: "get",
      path: "é".repeat(MAX_PATH_BYTES / 2) + "a",
      offset: 0,
    }],
    ["a LIST path over MAX_PATH_BYTES", {
      type: "list",
      path: "🚀".repeat(MAX_PATH_BYTES / 4 + 1),
      recursive: false,
    }],
    ["an entry name over MAX_PATH_BYTES", {
      type: "entries",
      entries: [entry, { ...entry, name: "x".repeat(MAX_PATH_BYTES + 1) }],
    }],
    ["a negative size", { ...put, size: -1 }],
    ["a fractional size", { ...put, size: 1.5 }],
    ["a size above MAX_SAFE_INTEGER", { ...put, size: 2 ** 53 }],
    ["a NaN offset", { type: "get", path: "a", offset: NaN }],
    ["an infinite offset", { type: "ready", offset: Infinity }],
    ["a negative offset", { type: "ready", offset: -1 }],
    ["an unsafe mtime", { ...put, size: 0, mtime: 2 ** 53 }],
    ["a fractional mtime", { type: "data", size: 0, offset: 0, mtime: 0.5 }],
    ["a negative entry size", { type: "info", entry: { ...entry, size: -3 } }],
    ["an unsafe entry mtime", {
      type: "info",
      entry: { ...entry, mtime: -(2 ** 53) },
    }],
    ["an unknown entry kind", {
      type: "info",
      entry: { ...entry, kind: "link" as Entry["kind"] },
    }],
    ["a DATA offset beyond its size", {
      type: "data",
      size: 1,
      offset: 2,
      mtime: 0,
    }],
    ["a digest over MAX_DIGEST_BYTES", {
      type: "hash",
      digest: new Uint8Array(MAX_DIGEST_BYTES + 1),
    }],
    ["an empty DIGESTS", { type: "digests", algorithms: [] }],
    ["a DIGESTS over MAX_DIGESTS", {
      type: "digests",
      algorithms: Array.from({ length: MAX_DIGESTS + 1 }, () => "sha256"),
    }],
    ["a malformed digest name", { type: "digests", algorithms: ["SHA256"] }],
    ["an empty digest", { type: "hash", digest: new Uint8Array(0) }],
    ["a short mac", { type: "auth", mac: new Uint8Array(31) }],
    ["a nonce over MAX_NONCE_BYTES", {
      ...hello,
      nonce: new Uint8Array(MAX_NONCE_BYTES + 1),
    }],
    ["a version above 65535", {
      ...hello,
      minVersion: 0x10000,
      nonce: new Uint8Array(0),
    }],
    ["negative flags", { ...hello, flags: -1, nonce: new Uint8Array(0) }],
    ["a lowercase error code", {
      type: "error",
      code: "not_found",
      message: "",
    }],
    ["an empty error code", { type: "error", code: "", message: "" }],
    ["a 33-character error code", {
      type: "error",
      code: "A".repeat(33),
      message: "",
    }],
    ["an error text over 65535 bytes", {
      type: "error",
      code: "INTERNAL",
      message: "x".repeat(0x10000),
    }],
    ["an END count above 2^32 - 1", { type: "end", count: 2 ** 32 }],
    ["a payload over MAX_FRAME_BYTES", {
      type: "entries",
      entries: Array.from(
        { length: 9000 },
        () => ({ ...entry, name: "n".repeat(100) }),
      ),
    }],
  ];
  for (const [name, message] of cases) {
    assert.throws(() => encodeMessage(message), RangeError, name);
  }
});

Deno.test("encodeMessage() throws TypeError for an unknown message type", () => {
  assert.throws(
    () => encodeMessage({ type: "nope" } as unknown as Message),
    TypeError,
  );
});

// -------------------------------------------------------------------- fuzz

const VALID_TYPES = Object.values(FRAME_TYPES);
const KNOWN_TYPES = new Set(Object.keys(FRAME_TYPES));

/**
 * Decodes `bytes` and checks that the outcome is one of the three allowed:
 * a message (that encodes back to the same bytes), `undefined`, or a
 * `FerryError` with a decoder code.
 */
function checkDecodeOutcome(bytes: Uint8Array, label: string): string {
  let decoded: ReturnType<typeof decodeFrame>;
  try {
    decoded = decodeFrame(bytes);
  } catch (error) {
    if (
      error instanceof FerryError &&
      (error.code === "BAD_REQUEST" || error.code === "TOO_LARGE")
    ) {
      return error.code;
    }
    assert.fail(`${label}: ${hex(bytes)} threw ${error}`);
  }
  if (decoded === undefined) return "undefined";
  const { message, size } = decoded;
  assert.ok(KNOWN_TYPES.has(message.type), `${label}: ${hex(bytes)}`);
  assert.ok(
    size >= FRAME_HEADER_BYTES && size <= bytes.length,
    `${label}: ${hex(bytes)}`,
  );
  // Whatever decodes must encode again; encodings are canonical except that
  // a PUT or MKDIR without the mtime flag ignores the mtime field.
  const again = encodeMessage(message);
  assert.deepEqual(
    decodeFrame(again)?.message,
    message,
    `${label}: ${hex(bytes)}`,
  );
  if (message.type !== "put" && message.type !== "mkdir") {
    assert.equal(
      hex(again),
      hex(bytes.subarray(0, size)),
      `${label}: ${hex(bytes)}`,
    );
  }
  return message.type;
}

Deno.test("decodeFrame() returns a message, undefined or a FerryError for random bytes", () => {
  const seed = 0xfe77;
  const random = seededRandom(seed);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const bytes = new Uint8Array(random(64));
    for (let j = 0; j < bytes.length; j++) bytes[j] = random(256);
    // Most inputs get a valid type and, often, a consistent length, so that
    // payload decoding (not just the header check) is exercised.
    if (bytes.length >= FRAME_HEADER_BYTES && random(8) !== 0) {
      bytes[0] = VALID_TYPES[random(VALID_TYPES.length)];
      if (random(4) !== 0) {
        new DataView(bytes.buffer).setUint32(
          1,
          bytes.length - FRAME_HEADER_BYTES - random(3),
        );
      }
    }
    const outcome = checkDecodeOutcome(bytes, `seed ${seed}, input ${i}`);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  // The fuzz reaches every outcome.
  for (
    const outcome of ["undefined", "BAD_REQUEST", "TOO_LARGE", "ok", "end"]
  ) {
    assert.ok(outcomes.has(outcome), `never saw ${outcome}: ${[...outcomes]}`);
  }
});

Deno.test("decodeFrame() returns a message, undefined or a FerryError for mutated frames", () => {
  const seed = 0x5eed;
  const random = seededRandom(seed);
  const bases = FRAMES.filter((bytes) => bytes.length < 1024);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    let bytes: Uint8Array = bases[random(bases.length)].slice();
    const mutations = 1 + random(3);
    for (let m = 0; m < mutations; m++) {
      const at = random(bytes.length + 1);
      switch (random(8)) {
        case 0: // flip a bit
          if (bytes.length > 0) bytes[at % bytes.length] ^= 1 << random(8);
          break;
        case 1: // set a random byte
          if (bytes.length > 0) bytes[at % bytes.length] = random(256);
          break;
        case 2: { // insert random bytes
          const inserted = Uint8Array.from(
            { length: 1 + random(4) },
            () => random(256),
          );
          bytes = concat(bytes.subarray(0, at), inserted, bytes.subarray(at));
          break;
        }
        case 3: // delete bytes
          bytes = concat(
            bytes.subarray(0, at),
            bytes.subarray(at + 1 + random(4)),
          );
          break;
        case 4: // truncate
          bytes = bytes.slice(0, at);
          break;
        case 5: // a random, often huge, declared length
          if (bytes.length >= FRAME_HEADER_BYTES) {
            const lengths = [
              2 ** 32 - 1,
              MAX_FRAME_BYTES,
              MAX_FRAME_BYTES + 1,
              random(2 ** 32),
              random(64),
            ];
            new DataView(bytes.buffer).setUint32(
              1,
              lengths[random(lengths.length)],
            );
          }
          break;
        case 6: // a random but valid type
          if (bytes.length > 0) {
            bytes[0] = VALID_TYPES[random(VALID_TYPES.length)];
          }
          break;
        case 7: // set a 16-bit field somewhere to an extreme value
          if (bytes.length >= at + 2) {
            bytes.set(u16([0, 0xffff, 4096, 4097][random(4)]), at);
          }
          break;
      }
    }
    // Usually make the header consistent again, so that the payload decoder
    // sees the damage.
    if (bytes.length >= FRAME_HEADER_BYTES && random(3) !== 0) {
      new DataView(bytes.buffer).setUint32(
        1,
        bytes.length - FRAME_HEADER_BYTES,
      );
    }
    const outcome = checkDecodeOutcome(bytes, `seed ${seed}, input ${i}`);
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  for (const outcome of ["undefined", "BAD_REQUEST", "TOO_LARGE"]) {
    assert.ok(outcomes.has(outcome), `never saw ${outcome}: ${[...outcomes]}`);
  }
  // Mutations that keep a frame valid are common enough to decode many
  // message types.
  const decodedTypes = [...outcomes.keys()].filter((key) =>
    KNOWN_TYPES.has(key)
  );
  assert.ok(decodedTypes.length >= 8, `decoded only ${decodedTypes}`);
});

// ------------------------------------------------- FrameReader raw and peek

Deno.test("FrameReader.read() hands out buffered bytes before reading the source", async () => {
  const raw = encoder.encode("hello world");
  const end = encodeMessage({ type: "end", count: 2 });
  const source = new ChunkSource([
    concat(encodeMessage({ type: "ok" }), raw, end),
  ]);
  const reader = new FrameReader(source);
  assert.deepEqual(await reader.readMessage(), { type: "ok" });
  assert.equal(source.requested.length, 1);
  assert.equal(reader.buffered, raw.length + end.length);
  const p = new Uint8Array(4);
  assert.equal(await reader.read(p), 4);
  assert.deepEqual(p, encoder.encode("hell"));
  const q = new Uint8Array(7);
  assert.equal(await reader.read(q), 7);
  assert.deepEqual(q, encoder.encode("o world"));
  assert.equal(reader.buffered, end.length);
  assert.equal(source.requested.length, 1, "no read from the source yet");
  assert.deepEqual(await reader.readMessage(), { type: "end", count: 2 });
  assert.equal(reader.buffered, 0);
});

Deno.test("FrameReader.read() returns no more than is buffered, even when the source has more", async () => {
  const first = concat(
    encodeMessage({ type: "ready", offset: 0 }),
    encoder.encode("ab"),
  );
  const source = new ChunkSource([first, encoder.encode("cdef")]);
  const reader = new FrameReader(source);
  assert.deepEqual(await reader.readMessage(), { type: "ready", offset: 0 });
  const p = new Uint8Array(6);
  assert.equal(await reader.read(p), 2);
  assert.deepEqual(p.subarray(0, 2), encoder.encode("ab"));
  assert.equal(await reader.read(p.subarray(2)), 4);
  assert.deepEqual(p, encoder.encode("abcdef"));
  assert.equal(await reader.read(p), null);
});

Deno.test("FrameReader.read() reads straight into the caller's buffer once nothing is buffered", async () => {
  const source = new ChunkSource([
    encodeMessage({ type: "ok" }),
    encoder.encode("raw bytes"),
  ]);
  const reader = new FrameReader(source);
  assert.deepEqual(await reader.readMessage(), { type: "ok" });
  assert.equal(reader.buffered, 0);
  const p = new Uint8Array(100);
  assert.equal(await reader.read(p), 9);
  assert.equal(
    source.buffers.at(-1),
    p,
    "the source was given the caller's buffer",
  );
  assert.deepEqual(p.subarray(0, 9), encoder.encode("raw bytes"));
  assert.equal(await reader.read(p), null);
});

Deno.test("FrameReader.read() returns 0 for an empty buffer without reading", async () => {
  const source = new ChunkSource([encoder.encode("x")]);
  const reader = new FrameReader(source);
  assert.equal(await reader.read(new Uint8Array(0)), 0);
  assert.equal(source.requested.length, 0);
});

Deno.test("FrameReader.peek() shows buffered bytes without consuming them", async () => {
  const ok = encodeMessage({ type: "ok" });
  const source = new ChunkSource([ok.subarray(0, 1), ok.subarray(1), ok]);
  const reader = new FrameReader(source);
  const first = await reader.peek();
  assert.deepEqual(first, new Uint8Array([FRAME_TYPES.ok]));
  assert.equal(reader.buffered, 1);
  // A second peek with bytes buffered does not read again.
  assert.deepEqual(await reader.peek(), first);
  assert.equal(source.requested.length, 1);
  assert.deepEqual(await reader.readMessage(), { type: "ok" });
  assert.deepEqual(await reader.peek(), ok);
  assert.deepEqual(await reader.readMessage(), { type: "ok" });
  assert.equal(await reader.peek(), null);
  assert.equal(await reader.readMessage(), null);
});

Deno.test("FrameReader.peek() then read() hands out the peeked bytes", async () => {
  const reader = new FrameReader(
    new ChunkSource([encoder.encode("classic.txt\n")]),
  );
  const peeked = await reader.peek();
  assert.ok(peeked);
  assert.notEqual(peeked[0], FRAME_TYPES.hello);
  const p = new Uint8Array(64);
  const n = await reader.read(p);
  assert.equal(
    new TextDecoder().decode(p.subarray(0, n ?? 0)),
    "classic.txt\n",
  );
});

// ---------------------------------------------------------------- writeAll

class TricklingWriter implements ByteWriter {
  readonly received: number[] = [];
  calls = 0;
  #take: (length: number) => number;

  constructor(take: (length: number) => number) {
    this.#take = take;
  }

  write(p: Uint8Array): Promise<number> {
    this.calls++;
    const n = Math.max(1, Math.min(p.length, this.#take(p.length)));
    this.received.push(...p.subarray(0, n));
    return Promise.resolve(n);
  }
}

Deno.test("writeAll() loops over partial writes", async () => {
  const bytes = concat(...FRAMES.slice(0, 6));
  const oneByte = new TricklingWriter(() => 1);
  await writeAll(oneByte, bytes);
  assert.deepEqual(new Uint8Array(oneByte.received), bytes);
  assert.equal(oneByte.calls, bytes.length);
  const random = seededRandom(7);
  const ragged = new TricklingWriter((length) => 1 + random(length));
  await writeAll(ragged, bytes);
  assert.deepEqual(new Uint8Array(ragged.received), bytes);
});

Deno.test("writeAll() does not call the writer for no bytes", async () => {
  const writer = new TricklingWriter(() => 1);
  await writeAll(writer, new Uint8Array(0));
  assert.equal(writer.calls, 0);
});

Deno.test("writeAll() passes on the writer's error", async () => {
  const writer: ByteWriter = {
    write: () => Promise.reject(new Error("broken pipe")),
  };
  await assert.rejects(writeAll(writer, new Uint8Array(3)), /broken pipe/);
});

Deno.test("encodeMessageInto() writes the bytes of encodeMessage() at the offset, or nothing and 0 when they do not fit", () => {
  const messages: Message[] = [
    {
      type: "put",
      path: "a/b.txt",
      size: 1024,
      overwrite: false,
      resume: false,
      eager: true,
      mtime: 1_700_000_000_123,
    },
    { type: "put", path: "x", size: 0, overwrite: true, resume: false },
    {
      type: "put",
      path: "d/é.bin",
      size: 5,
      overwrite: false,
      resume: true,
      mtime: -5,
    },
    {
      type: "put",
      path: "p".repeat(300),
      size: 2 ** 40,
      overwrite: false,
      resume: false,
      append: true,
    },
    { type: "hash", digest: new Uint8Array(16).fill(7) },
    { type: "hash", digest: new Uint8Array(32).fill(9) },
    { type: "mkdir", path: "d", mtime: 5 },
    { type: "ok" },
    { type: "get", path: "t0/s1/f12.bin", offset: 0 },
    { type: "get", path: "ünï/日本.txt", offset: 5 },
    // ASCII first: nothing may be written before the rest is seen.
    { type: "get", path: "d/é.bin", offset: 1 },
    { type: "get", path: "g".repeat(300), offset: 2 ** 40 + 3 },
  ];
  for (const message of messages) {
    const want = encodeMessage(message);
    for (const at of [0, 3]) {
      const out = new Uint8Array(at + want.length + 2).fill(0xee);
      assert.equal(encodeMessageInto(message, out, at), want.length);
      assert.deepEqual(out.subarray(at, at + want.length), want);
      assert.deepEqual(out.subarray(0, at), new Uint8Array(at).fill(0xee));
      assert.deepEqual(
        out.subarray(at + want.length),
        new Uint8Array([0xee, 0xee]),
      );
      const short = new Uint8Array(at + want.length - 1).fill(0xee);
      assert.equal(encodeMessageInto(message, short, at), 0);
      assert.deepEqual(short, new Uint8Array(short.length).fill(0xee));
    }
  }
  const out = new Uint8Array(100);
  for (
    const bad of [
      { type: "put", path: "a", size: -1, overwrite: false, resume: false },
      {
        type: "put",
        path: "a",
        size: 1,
        overwrite: false,
        resume: true,
        eager: true,
      },
      { type: "hash", digest: new Uint8Array(0) },
      { type: "get", path: "a", offset: -1 },
    ] as Message[]
  ) {
    assert.throws(() => encodeMessage(bad), RangeError);
    assert.throws(() => encodeMessageInto(bad, out, 0), RangeError);
  }
});

Deno.test("FrameReader.fill() reads until n bytes are buffered, across reads and past its first buffer", async () => {
  const bytes = new Uint8Array(100_000).map((_, i) => i % 251);
  const chunks = [bytes.subarray(0, 10), bytes.subarray(10, 70_000)];
  chunks.push(bytes.subarray(70_000));
  const reader = new FrameReader({
    read(p: Uint8Array): Promise<number | null> {
      const chunk = chunks[0];
      if (chunk === undefined) return Promise.resolve(null);
      const n = Math.min(p.length, chunk.length);
      p.set(chunk.subarray(0, n));
      if (n === chunk.length) chunks.shift();
      else chunks[0] = chunk.subarray(n);
      return Promise.resolve(n);
    },
  });
  assert.equal(await reader.fill(5), true);
  assert.ok(reader.buffered >= 5);
  reader.skip(3);
  assert.equal(await reader.fill(90_000), true);
  assert.ok(reader.buffered >= 90_000);
  assert.deepEqual(
    reader.bufferedBytes().subarray(0, 90_000),
    bytes.subarray(3, 90_003),
  );
  assert.equal(await reader.fill(200_000), false); // the stream ended
  await assert.rejects(reader.fill(2 ** 30), RangeError);
});
