import assert from "node:assert/strict";
import { DT_REG, readDirents } from "./dirents.ts";

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
  const bytes = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

Deno.test("readDirents() reads ASCII and UTF-8 names with their types, and leaves out ., .. and a name that is not UTF-8", () => {
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
  readDirents(bytes, bytes.length, names, types);
  assert.deepEqual(names, ["a.txt", "é€日本.bin", ".hidden"]);
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
