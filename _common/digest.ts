/**
 * Digests of file contents in the session's algorithm (see `protocol.ts`,
 * "Digests"): XXH3-128 from the system's `libxxhash` where `--allow-ffi`
 * lets us load it (`native_xxh3.ts`, twice as fast) and from `hash-wasm`
 * (WebAssembly) everywhere else, SHA-256 from `node:crypto`, behind one
 * small {@linkcode Hasher} interface. Both XXH3 implementations give the
 * same digests (tested byte for byte), so peers never need to agree on one.
 *
 * A hasher reads the caller's buffer where it is: `update` takes a view of
 * a reused bulk buffer and allocates nothing per chunk. (XXH3's WebAssembly
 * code can only read its own memory, so `hash-wasm` moves each chunk
 * through a 16 KiB window there, a `memcpy` that stays in the CPU cache.)
 * The WebAssembly instances behind XXH3 hashers are reused: a finished
 * hasher gives its instance back to a small module-wide pool, so a tree of
 * thousands of files instantiates a handful, not thousands.
 *
 * @module
 */

import type { createHash, Hash } from "node:crypto";
import type { IHasher } from "hash-wasm";
import { DIGEST_BYTES, type DigestAlgorithm } from "../protocol.ts";
import { nativeXxh3, type NativeXxh3State } from "./native_xxh3.ts";

/**
 * `hash-wasm`'s XXH3-128 factory, loaded on first use: the package (270 KB
 * of JavaScript with every algorithm's WebAssembly inside) then costs
 * nothing to a process that never hashes, such as `client.ts --help`.
 *
 * It is the package's ES module build, `dist/index.esm.js` (same version,
 * same code): the package's `main` is a UMD file, which Deno loads as
 * CommonJS through its Node compatibility layer, about 30 ms more per
 * process (import 52 ms against 21 ms, medians of 6 warm runs).
 */
let xxh3Factory: Promise<() => Promise<IHasher>> | undefined;

function loadXxh3(): Promise<() => Promise<IHasher>> {
  return xxh3Factory ??= (import("hash-wasm/dist/index.esm.js") as Promise<
    typeof import("hash-wasm")
  >).then((module) => module.createXXHash128);
}

/**
 * `node:crypto`'s `createHash`, loaded on first use: importing `node:crypto`
 * costs a process about 35 ms at start (Deno's Node compatibility layer and
 * its crypto bindings), which only SHA-256 sessions need.
 */
let nodeCreateHash: Promise<typeof createHash> | undefined;

function loadCreateHash(): Promise<typeof createHash> {
  return nodeCreateHash ??= import("node:crypto").then((module) =>
    module.createHash
  );
}

/** A running digest of one file's bytes, fed in order. */
export interface Hasher {
  /** The algorithm. */
  readonly algorithm: DigestAlgorithm;
  /**
   * Feeds `chunk` (read in place; the caller may reuse it at once).
   *
   * @throws {Error} After {@linkcode Hasher.digest}.
   */
  update(chunk: Uint8Array): void;
  /**
   * Feeds `chunk` on another thread, where the engine can (native XXH3):
   * until the promise settles `chunk` must not change and no other call
   * may be made on this hasher. Absent where hashing is only synchronous.
   */
  updateInBackground?(chunk: Uint8Array): Promise<void>;
  /**
   * Ends the hasher and returns the digest of everything fed to it
   * ({@linkcode DIGEST_BYTES} long). A hasher is used once.
   */
  digest(): Uint8Array;
}

/** Free XXH3 instances kept for the next hashers. */
const MAX_FREE_ENGINES = 32;
const freeEngines: IHasher[] = [];

class Xxh3Hasher implements Hasher {
  readonly algorithm = "xxh3-128" as const;
  #engine: IHasher | undefined;

  constructor(engine: IHasher) {
    engine.init();
    this.#engine = engine;
  }

  update(chunk: Uint8Array): void {
    if (this.#engine === undefined) throw new Error("Hasher already finished");
    this.#engine.update(chunk);
  }

  digest(): Uint8Array {
    const engine = this.#engine;
    if (engine === undefined) throw new Error("Hasher already finished");
    this.#engine = undefined;
    const digest = engine.digest("binary");
    if (freeEngines.length < MAX_FREE_ENGINES) freeEngines.push(engine);
    return digest;
  }
}

/**
 * XXH3-128 in native code (see `native_xxh3.ts`): the same digests. Made
 * with `background`, it also offers {@linkcode Hasher.updateInBackground}.
 */
class NativeXxh3Hasher implements Hasher {
  readonly algorithm = "xxh3-128" as const;
  readonly updateInBackground?: (chunk: Uint8Array) => Promise<void>;
  #state: NativeXxh3State;

  constructor(state: NativeXxh3State, background: boolean) {
    this.#state = state;
    if (background) {
      this.updateInBackground = (chunk) => state.updateInBackground(chunk);
    }
  }

  update(chunk: Uint8Array): void {
    this.#state.update(chunk);
  }

  digest(): Uint8Array {
    return this.#state.digest();
  }
}

class Sha256Hasher implements Hasher {
  readonly algorithm = "sha256" as const;
  #hash: Hash | undefined;

  constructor(hash: Hash) {
    this.#hash = hash;
  }

  update(chunk: Uint8Array): void {
    if (this.#hash === undefined) throw new Error("Hasher already finished");
    this.#hash.update(chunk);
  }

  digest(): Uint8Array {
    const hash = this.#hash;
    if (hash === undefined) throw new Error("Hasher already finished");
    this.#hash = undefined;
    const digest = hash.digest(); // a Buffer: give back a plain array view
    return new Uint8Array(digest.buffer, digest.byteOffset, digest.length);
  }
}

/**
 * Starts a digest of `algorithm`. Resolves at once when a pooled XXH3
 * instance is free (the first one loads `hash-wasm` and compiles the
 * WebAssembly module) or SHA-256 was used before (the first one loads
 * `node:crypto`).
 *
 * @param algorithm The session's algorithm.
 * @param options `background`: let long chunks be hashed on Deno's blocking
 * pool ({@linkcode Hasher.updateInBackground}) where the engine can.
 * @returns A fresh hasher.
 * @throws {TypeError} For an algorithm this module does not know.
 *
 * @example Hash two chunks
 * ```ts
 * import assert from "node:assert/strict";
 * import { createHasher } from "./digest.ts";
 * const hasher = await createHasher("xxh3-128");
 * hasher.update(new TextEncoder().encode("a"));
 * hasher.update(new TextEncoder().encode("bc"));
 * assert(hasher.digest().length === 16);
 * ```
 */
export async function createHasher(
  algorithm: DigestAlgorithm,
  options: { background?: boolean } = {},
): Promise<Hasher> {
  switch (algorithm) {
    case "xxh3-128": {
      // The system's libxxhash where --allow-ffi lets us load it (twice
      // as fast); hash-wasm everywhere else.
      const native = nativeXxh3();
      if (native !== undefined) {
        return new NativeXxh3Hasher(
          native.start(),
          options.background === true,
        );
      }
      return new Xxh3Hasher(
        freeEngines.pop() ?? await (await loadXxh3())(),
      );
    }
    case "sha256":
      return new Sha256Hasher((await loadCreateHash())("sha256"));
    default:
      throw new TypeError(`Unknown digest algorithm: ${algorithm}`);
  }
}

/**
 * The digest of one whole buffer.
 *
 * @param algorithm The algorithm.
 * @param bytes The bytes.
 * @returns Their digest.
 *
 * @example SHA-256 of nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestOf } from "./digest.ts";
 * const digest = await digestOf("sha256", new Uint8Array(0));
 * assert(digest[0] === 0xe3);
 * ```
 */
export async function digestOf(
  algorithm: DigestAlgorithm,
  bytes: Uint8Array,
): Promise<Uint8Array> {
  if (algorithm === "xxh3-128") {
    const native = nativeXxh3();
    if (native !== undefined) return native.hash(bytes);
  }
  const hasher = await createHasher(algorithm);
  hasher.update(bytes);
  return hasher.digest();
}

/**
 * The digest of one whole buffer when it can be had without waiting (XXH3
 * from the system's `libxxhash`), else `undefined`: then
 * {@linkcode digestOf}. A loop over many small buffers spares a promise
 * and a turn of the event loop each.
 *
 * @param algorithm The algorithm.
 * @param bytes The bytes.
 * @returns Their digest, or `undefined`.
 *
 * @example Fall back when it is not at hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestNow, digestOf } from "./digest.ts";
 * const bytes = new TextEncoder().encode("abc");
 * const digest = digestNow("xxh3-128", bytes) ??
 *   await digestOf("xxh3-128", bytes);
 * assert.deepEqual(digest, await digestOf("xxh3-128", bytes));
 * ```
 */
export function digestNow(
  algorithm: DigestAlgorithm,
  bytes: Uint8Array,
): Uint8Array | undefined {
  return algorithm === "xxh3-128" ? nativeXxh3()?.hash(bytes) : undefined;
}

/**
 * Checks that a peer's `HASH` has the session algorithm's length.
 *
 * @param algorithm The session's algorithm.
 * @param digest The digest received.
 * @returns Whether the length is right.
 *
 * @example A SHA-256-sized digest in an XXH3 session
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestFits } from "./digest.ts";
 * assert(!digestFits("xxh3-128", new Uint8Array(32)));
 * ```
 */
export function digestFits(
  algorithm: DigestAlgorithm,
  digest: Uint8Array,
): boolean {
  return digest.length === DIGEST_BYTES[algorithm];
}
