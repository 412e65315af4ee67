import assert from "node:assert/strict";
import { createHasher, digestFits, digestOf } from "./digest.ts";
import { DIGEST_ALGORITHMS, DIGEST_BYTES } from "../protocol.ts";
import { nativeXxh3 } from "./native_xxh3.ts";

const text = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** 100,000 bytes `i % 251`: long enough for XXH3's striped long-input path. */
function pattern(): Uint8Array {
  const bytes = new Uint8Array(100_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
  return bytes;
}

Deno.test("digestOf() matches the XXH3-128 reference vectors (xxHash's xxh128sum)", async () => {
  // Canonical (big-endian) XXH128 with seed 0, as printed by xxh128sum 0.8.
  assert.equal(
    hex(await digestOf("xxh3-128", new Uint8Array(0))),
    "99aa06d3014798d86001c324468d497f",
  );
  assert.equal(
    hex(await digestOf("xxh3-128", text.encode("abc"))),
    "06b05ab6733a618578af5f94892f3950",
  );
  assert.equal(
    hex(await digestOf("xxh3-128", text.encode("hi\n"))),
    "f4d0497cf9394caab34d1a3ab2bece70",
  );
  assert.equal(
    hex(await digestOf("xxh3-128", pattern())),
    "54182c58bbb1337c42c23aeead96750d",
  );
});

Deno.test("digestOf() matches the SHA-256 reference vector", async () => {
  assert.equal(
    hex(await digestOf("sha256", text.encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("createHasher() gives the same digest however the bytes are chunked", async () => {
  const bytes = pattern();
  for (const algorithm of DIGEST_ALGORITHMS) {
    const whole = await digestOf(algorithm, bytes);
    const hasher = await createHasher(algorithm);
    // Chunks of odd sizes, fed from one reused buffer as the bulk path does.
    const buffer = new Uint8Array(7919);
    for (let at = 0; at < bytes.length; at += buffer.length) {
      const chunk = bytes.subarray(at, at + buffer.length);
      buffer.set(chunk);
      hasher.update(buffer.subarray(0, chunk.length));
    }
    const chunked = hasher.digest();
    assert.equal(chunked.length, DIGEST_BYTES[algorithm]);
    assert.deepEqual(chunked, whole, algorithm);
  }
});

Deno.test("createHasher() reuses a finished XXH3 instance without carrying state over", async () => {
  const first = await createHasher("xxh3-128");
  first.update(text.encode("something else entirely"));
  first.digest();
  const second = await createHasher("xxh3-128");
  second.update(text.encode("abc"));
  assert.equal(hex(second.digest()), "06b05ab6733a618578af5f94892f3950");
});

Deno.test("Hasher refuses to be used after digest()", async () => {
  for (const algorithm of DIGEST_ALGORITHMS) {
    const hasher = await createHasher(algorithm);
    hasher.digest();
    assert.throws(() => hasher.update(new Uint8Array(1)), /finished/);
    assert.throws(() => hasher.digest(), /finished/);
  }
});

Deno.test("digestFits() checks a digest's length against the algorithm", () => {
  assert(digestFits("xxh3-128", new Uint8Array(16)));
  assert(!digestFits("xxh3-128", new Uint8Array(32)));
  assert(digestFits("sha256", new Uint8Array(32)));
});

Deno.test("createHasher() with background gives the same digest, hashing long chunks on another thread where it can", async () => {
  const bytes = new Uint8Array(2 * 1024 * 1024 + 9);
  for (let i = 0; i < bytes.length; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  }
  const expected = await digestOf("xxh3-128", bytes);
  const hasher = await createHasher("xxh3-128", { background: true });
  const half = 1024 * 1024;
  if (nativeXxh3() !== undefined) assert(hasher.updateInBackground);
  if (hasher.updateInBackground) {
    await hasher.updateInBackground(bytes.subarray(0, half));
  } else hasher.update(bytes.subarray(0, half));
  hasher.update(bytes.subarray(half));
  assert.deepEqual(hasher.digest(), expected);
  // Without the option, hashing stays on the caller's thread.
  const plain = await createHasher("xxh3-128");
  assert.equal(plain.updateInBackground, undefined);
  plain.digest();
});
