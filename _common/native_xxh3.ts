/**
 * XXH3-128 from the system's xxHash library (`libxxhash.so.0`: Debian and
 * Ubuntu's `libxxhash0`, which rsync and apt depend on) through
 * `Deno.dlopen`, where `--allow-ffi` is granted. It gives the same digests
 * as hash-wasm's XXH3-128 (tested byte for byte), with no copy of each chunk
 * into WebAssembly memory, and where the library was built with its x86
 * dispatcher (Debian's and Ubuntu's are) through the `*_dispatch` entry
 * points, which pick the widest vector unit the CPU has (AVX2 or AVX-512)
 * at run time. The plain entry points are compiled for the architecture's
 * baseline (SSE2 on x86-64) whatever the CPU. On this project's machine
 * 1 GiB hashes in 39 ms through the dispatcher, 126 ms through the plain
 * entry points and 230 ms in hash-wasm. On the receiving side of a big
 * download the hash is a large part of the client's own work, and on a
 * cache miss of the server's as well.
 *
 * {@linkcode nativeXxh3} loads the library once and returns `undefined`
 * where it cannot (no permission, another OS, no library, an old version
 * without XXH3): the caller then uses hash-wasm.
 *
 * @module
 */

import { openLibrary } from "./ffi.ts";

const SYMBOLS = {
  XXH3_createState: { parameters: [], result: "pointer" },
  XXH3_freeState: { parameters: ["pointer"], result: "i32" },
  XXH3_128bits_reset: { parameters: ["pointer"], result: "i32" },
  XXH3_128bits_update: {
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
  },
  // The same on Deno's blocking pool: a large chunk hashed on another
  // thread while this one moves the next.
  XXH3_128bits_update_background: {
    name: "XXH3_128bits_update",
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  // The same through the x86 dispatcher (absent from builds without it).
  XXH3_128bits_update_dispatch: {
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
    optional: true,
  },
  XXH3_128bits_update_dispatch_background: {
    name: "XXH3_128bits_update_dispatch",
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
    optional: true,
  },
  // XXH128_hash_t { low64, high64 }, returned by value.
  XXH3_128bits_digest: {
    parameters: ["pointer"],
    result: { struct: ["u64", "u64"] },
  },
  // One whole buffer at once (no state): what a small file needs. The
  // length is a u32 here (no BigInt per call); longer buffers stream.
  XXH3_128bits: {
    parameters: ["buffer", "u32"],
    result: { struct: ["u64", "u64"] },
    optional: true,
  },
  XXH3_128bits_dispatch: {
    parameters: ["buffer", "u32"],
    result: { struct: ["u64", "u64"] },
    optional: true,
  },
} as const;

const LIBRARY_NAMES: Partial<Record<typeof Deno.build.os, string[]>> = {
  linux: ["libxxhash.so.0", "libxxhash.so"],
  darwin: ["libxxhash.0.dylib", "libxxhash.dylib"],
  freebsd: ["libxxhash.so.0", "libxxhash.so"],
};

/** The most free states kept for later hashers. */
const MAX_FREE_STATES = 32;

/**
 * One running XXH3-128 in native code.
 *
 * @example Hash two chunks
 * ```ts
 * import { nativeXxh3 } from "./native_xxh3.ts";
 * const xxh3 = nativeXxh3();
 * if (xxh3) {
 *   const state = xxh3.start();
 *   state.update(new TextEncoder().encode("hello "));
 *   state.update(new TextEncoder().encode("world"));
 *   console.log(state.digest().length); // 16
 * }
 * ```
 */
export interface NativeXxh3State {
  /**
   * Feeds `chunk`, read in place.
   *
   * @param chunk The bytes.
   */
  update(chunk: Uint8Array): void;
  /**
   * Feeds `chunk` on another thread. Until the promise settles, `chunk`
   * must not change and no other call may be made on this state.
   *
   * @param chunk The bytes.
   * @returns When they are hashed.
   */
  updateInBackground(chunk: Uint8Array): Promise<void>;
  /**
   * Ends the state and returns the canonical (big-endian) 16-byte digest.
   *
   * @returns The digest.
   */
  digest(): Uint8Array;
}

/**
 * The loaded library: makes {@linkcode NativeXxh3State}s.
 *
 * @example Start a state
 * ```ts
 * import { nativeXxh3 } from "./native_xxh3.ts";
 * console.log(nativeXxh3()?.start().digest().length);
 * ```
 */
export interface NativeXxh3 {
  /**
   * A fresh state.
   *
   * @returns The state.
   */
  start(): NativeXxh3State;
  /**
   * The canonical digest of one whole buffer, in one call.
   *
   * @param bytes The bytes (read in place).
   * @returns The digest.
   */
  hash(bytes: Uint8Array): Uint8Array;
}

type Library = Deno.DynamicLibrary<typeof SYMBOLS>;
type Symbols = Library["symbols"];

/** The entry points used: the dispatcher's where the library has them. */
interface Calls {
  update: Symbols["XXH3_128bits_update"];
  updateInBackground: Symbols["XXH3_128bits_update_background"];
  once: Symbols["XXH3_128bits"];
}

function chooseCalls(symbols: Symbols): Calls {
  return {
    update: symbols.XXH3_128bits_update_dispatch ??
      symbols.XXH3_128bits_update,
    updateInBackground: symbols.XXH3_128bits_update_dispatch_background ??
      symbols.XXH3_128bits_update_background,
    once: symbols.XXH3_128bits_dispatch ?? symbols.XXH3_128bits,
  };
}

class State implements NativeXxh3State {
  #lib: Library;
  #calls: Calls;
  #pointer: Deno.PointerObject | null;
  #free: Deno.PointerObject[];

  constructor(
    lib: Library,
    calls: Calls,
    pointer: Deno.PointerObject,
    free: Deno.PointerObject[],
  ) {
    this.#lib = lib;
    this.#calls = calls;
    this.#pointer = pointer;
    this.#free = free;
    lib.symbols.XXH3_128bits_reset(pointer);
  }

  update(chunk: Uint8Array): void {
    if (this.#pointer === null) throw new Error("Hasher already finished");
    this.#calls.update(
      this.#pointer,
      chunk as Uint8Array<ArrayBuffer>,
      BigInt(chunk.length),
    );
  }

  async updateInBackground(chunk: Uint8Array): Promise<void> {
    if (this.#pointer === null) throw new Error("Hasher already finished");
    // Awaited here, so that this state (and its native memory) stays
    // reachable until the other thread is done with it.
    await this.#calls.updateInBackground(
      this.#pointer,
      chunk as Uint8Array<ArrayBuffer>,
      BigInt(chunk.length),
    );
  }

  digest(): Uint8Array {
    const pointer = this.#pointer;
    if (pointer === null) throw new Error("Hasher already finished");
    this.#pointer = null;
    const raw = this.#lib.symbols.XXH3_128bits_digest(pointer);
    abandoned.unregister(this);
    if (this.#free.length < MAX_FREE_STATES) this.#free.push(pointer);
    else this.#lib.symbols.XXH3_freeState(pointer);
    const words = new DataView(raw.buffer, raw.byteOffset, 16);
    const out = new Uint8Array(16);
    const view = new DataView(out.buffer);
    view.setBigUint64(0, words.getBigUint64(8, true)); // high64 first
    view.setBigUint64(8, words.getBigUint64(0, true));
    return out;
  }
}

/** Frees the state of a hasher dropped unfinished (a failed transfer). */
const abandoned = new FinalizationRegistry<() => void>((free) => free());

class Loaded implements NativeXxh3 {
  #lib: Library;
  #calls: Calls;
  #free: Deno.PointerObject[] = [];

  constructor(lib: Library) {
    this.#lib = lib;
    this.#calls = chooseCalls(lib.symbols);
  }

  hash(bytes: Uint8Array): Uint8Array {
    const once = this.#calls.once;
    if (once === null || bytes.length > 0xffff_ffff) {
      const state = this.start();
      state.update(bytes);
      return state.digest();
    }
    // { low64, high64 } little-endian; canonical is high64 then low64, both
    // big-endian: the 16 bytes reversed.
    const raw = once(bytes as Uint8Array<ArrayBuffer>, bytes.length);
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++) out[i] = raw[15 - i];
    return out;
  }

  start(): NativeXxh3State {
    const pointer = this.#free.pop() ?? this.#lib.symbols.XXH3_createState();
    if (pointer === null) throw new Error("XXH3_createState failed");
    const state = new State(this.#lib, this.#calls, pointer, this.#free);
    const lib = this.#lib;
    abandoned.register(state, () => lib.symbols.XXH3_freeState(pointer), state);
    return state;
  }
}

let loaded: Loaded | null | undefined;

/**
 * The system's XXH3-128, or `undefined` where it cannot be used (no
 * `--allow-ffi`, no `libxxhash`, or a version without XXH3). Loaded once.
 *
 * @returns The library, or `undefined`.
 *
 * @example Ask which implementation runs
 * ```ts
 * import { nativeXxh3 } from "./native_xxh3.ts";
 * console.log(nativeXxh3() ? "native" : "WebAssembly");
 * ```
 */
export function nativeXxh3(): NativeXxh3 | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  const names = LIBRARY_NAMES[Deno.build.os];
  if (names === undefined) return undefined;
  const lib = openLibrary(names, SYMBOLS);
  if (lib === undefined) return undefined;
  loaded = new Loaded(lib);
  return loaded;
}
