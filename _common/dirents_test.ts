import assert from "node:assert/strict";
import {
  DENTS_BUFFER_BYTES,
  DT_REG,
  type FolderRecords,
  readDirents,
  readFolderNames,
} from "./dirents.ts";

/** `getdents64` records for `names` (each a regular file but the dots). */
function records(names: Uint8Array[]): Uint8Array {
  const parts = names.map((name) => {
    const length = (19 + name.length + 1 + 7) & ~7;
    const record = new Uint8Array(length);
    new DataView(record.buffer).setUint16(16, length, true);
    record[18] = name[0] === 0x2e ? 4 : DT_REG;
    record.set(name, 19);
    return record;
  });
  return concat(...parts);
}

Deno.test("readDirents() reads ASCII and UTF-8 names with their types, and leaves out ., .. and a name that is not UTF-8 (set apart, decoded lossily)", () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  const bytes = records([
    encode("."),
    encode(".."),
    encode("a.txt"),
    encode("é€日本.bin"),
    new Uint8Array([0x66, 0xff, 0x80]),
    encode(".hidden"),
  ]);
  const names: string[] = [];
  const types: number[] = [];
  const undecodable: string[] = [];
  readDirents(bytes, bytes.length, names, types, undecodable);
  assert.deepEqual(names, ["a.txt", "é€日本.bin", ".hidden"]);
  assert.deepEqual(undecodable, ["f\uFFFD\uFFFD"]);
  assert.deepEqual(types, [DT_REG, DT_REG, 4]);
});

Deno.test("readDirents() stops at a record that runs past the bytes read", () => {
  const bytes = records([
    new TextEncoder().encode("a"),
    new TextEncoder().encode("b"),
  ]);
  const names: string[] = [];
  readDirents(bytes, bytes.length - 1, names);
  assert.deepEqual(names, ["a"]);
});

/** One record of `length` bytes (`d_reclen`) with `name` at its start. */
function record(length: number, name: Uint8Array, size = length): Uint8Array {
  const bytes = new Uint8Array(Math.max(size, 19 + name.length));
  new DataView(bytes.buffer).setUint16(16, length, true);
  bytes[18] = DT_REG;
  bytes.set(name, 19);
  return bytes;
}

/** `parts` one after another. */
function concat(...parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

Deno.test("readDirents() stops at a record whose d_reclen is 0, leaves no room for a name, or runs past the bytes read", () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  const good = records([encode("a")]);
  for (
    const bad of [
      record(0, encode("zero"), 24),
      record(19, encode("nine"), 24),
      record(12, encode("short"), 24),
      record(4096, encode("long"), 24),
    ]
  ) {
    const bytes = concat(good, bad, good);
    const names: string[] = [];
    readDirents(bytes, bytes.length, names);
    assert.deepEqual(names, ["a"]);
  }
});

Deno.test("readDirents() ends a name with no NUL inside its record at the record's end", () => {
  // 24 bytes: the name "abcde" fills bytes 19-23, its NUL would be in the
  // next record.
  const bytes = concat(
    record(24, new TextEncoder().encode("abcde")),
    records([new TextEncoder().encode("next")]),
  );
  const names: string[] = [];
  readDirents(bytes, bytes.length, names);
  assert.deepEqual(names, ["abcde", "next"]);
});

Deno.test("readFolderNames() reads to the end, retries EINTR and returns any other errno", () => {
  const first = records([new TextEncoder().encode("a")]);
  const second = records([new TextEncoder().encode("b")]);
  // Each call's answer: bytes, or -errno.
  function reading(answers: number[]): FolderRecords {
    const chunks = [first, second];
    let errno = 0;
    return {
      getdents64(_fd, buffer) {
        const answer = answers.shift()!;
        if (answer < 0) {
          errno = -answer;
          return -1;
        }
        if (answer === 0) return 0;
        const chunk = chunks.shift()!;
        buffer.set(chunk);
        return chunk.length;
      },
      errno: () => errno,
      buffer: new Uint8Array(DENTS_BUFFER_BYTES),
    };
  }
  const names: string[] = [];
  const types: number[] = [];
  assert.equal(readFolderNames(reading([1, -4, 1, 0]), 3, names, types), 0);
  assert.deepEqual([names, types], [["a", "b"], [DT_REG, DT_REG]]);
  const partial: string[] = [];
  assert.equal(readFolderNames(reading([1, -2]), 3, partial), 2);
  assert.deepEqual(partial, ["a"]);
});
