import assert from "node:assert/strict";
import { toHex } from "./bytes.ts";

Deno.test("toHex() gives two lowercase digits per byte, in order, for any length", () => {
  for (const length of [0, 1, 16, 32, 64, 1024, 1025, 5000]) {
    const bytes = new Uint8Array(length).map((_, i) =>
      (i * 151 + length) & 0xff
    );
    const want = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0"))
      .join("");
    assert.equal(toHex(bytes), want, `length ${length}`);
  }
  // A shorter digest after a longer one: nothing of the longer is left.
  toHex(new Uint8Array(32).fill(0xab));
  assert.equal(toHex(new Uint8Array([1, 2])), "0102");
});
