import assert from "node:assert/strict";
import { createXXHash128 } from "hash-wasm";
import { nativeXxh3 } from "./native_xxh3.ts";

const native = nativeXxh3();
const why = native
  ? ""
  : " (ignored: libxxhash or --allow-ffi is missing here)";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name:
    `nativeXxh3() gives hash-wasm's XXH3-128 for any length and chunking${why}`,
  ignore: native === undefined,
  async fn() {
    const wasm = await createXXHash128();
    const bytes = new Uint8Array(3 * 1024 * 1024 + 77);
    for (let i = 0; i < bytes.length; i += 65536) {
      crypto.getRandomValues(bytes.subarray(i, i + 65536));
    }
    // Lengths around XXH3's internal boundaries (16, 128, 240, stripes,
    // blocks of 1024) and chunk cuts that split them.
    const lengths = [0, 1, 3, 16, 17, 128, 129, 240, 241, 1024, 1025, 65536];
    lengths.push(bytes.length, 1024 * 1024 + 5);
    for (const length of lengths) {
      for (const chunk of [1, 7, 4096, 1024 * 1024]) {
        const state = native!.start();
        wasm.init();
        for (let at = 0; at < length; at += chunk) {
          const piece = bytes.subarray(at, Math.min(length, at + chunk));
          state.update(piece);
          wasm.update(piece);
          if (chunk === 1 && at > 300) {
            state.update(bytes.subarray(at + 1, length));
            wasm.update(bytes.subarray(at + 1, length));
            break;
          }
        }
        assert.equal(
          hex(state.digest()),
          wasm.digest("hex"),
          `length ${length}, chunks of ${chunk}`,
        );
      }
    }
  },
});

Deno.test({
  name:
    `nativeXxh3().hash() gives hash-wasm's XXH3-128 of a whole buffer${why}`,
  ignore: native === undefined,
  async fn() {
    const wasm = await createXXHash128();
    const bytes = new Uint8Array(65536 + 3);
    crypto.getRandomValues(bytes.subarray(0, 65536));
    bytes.set([1, 2, 3], 65536);
    for (const length of [0, 1, 16, 17, 240, 241, 1024, 4096, 65539]) {
      const piece = bytes.subarray(0, length);
      wasm.init();
      wasm.update(piece);
      assert.equal(hex(native!.hash(piece)), wasm.digest("hex"), `${length}`);
    }
  },
});

Deno.test({
  name: `nativeXxh3() states refuse use after digest()${why}`,
  ignore: native === undefined,
  fn() {
    const state = native!.start();
    state.digest();
    assert.throws(() => state.update(new Uint8Array(1)), /finished/);
    assert.throws(() => state.digest(), /finished/);
  },
});

Deno.test({
  name:
    `nativeXxh3() state hashed on another thread gives the same digest as in place${why}`,
  ignore: native === undefined,
  async fn() {
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5);
    for (let i = 0; i < bytes.length; i += 65536) {
      crypto.getRandomValues(bytes.subarray(i, i + 65536));
    }
    for (const chunk of [1000, 256 * 1024, 1024 * 1024]) {
      const inPlace = native!.start();
      const background = native!.start();
      for (let at = 0; at < bytes.length; at += chunk) {
        const piece = bytes.subarray(at, Math.min(bytes.length, at + chunk));
        inPlace.update(piece);
        // Alternating: the two kinds of call feed one state in order.
        if ((at / chunk) % 2 === 0) await background.updateInBackground(piece);
        else background.update(piece);
      }
      assert.equal(
        hex(background.digest()),
        hex(inPlace.digest()),
        `chunks of ${chunk}`,
      );
    }
  },
});
