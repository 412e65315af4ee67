/**
 * The one way ferry opens a system library through `Deno.dlopen`: only
 * where the permissions it needs are granted (no prompt), trying each
 * name in turn, and `undefined` where none loads, so that every caller
 * falls back to its plain-Deno path. Used by the server's strict mode
 * (`_server/dir_handle.ts`), the client's small-file reads
 * (`_client/native_read.ts`) and writes (`_client/native_write.ts`) and
 * native XXH3 (`native_xxh3.ts`). Also the C strings they pass
 * ({@linkcode cString}).
 *
 * @module
 */

/**
 * Opens the first of `names` that loads with `symbols`, if every
 * permission in `permissions` is granted.
 *
 * @param names Library names to try, in order (e.g. `libc.so.6`).
 * @param symbols The symbols to bind.
 * @param permissions Permissions that must be granted (`ffi` always is
 * needed; add `read` for a binding that reads files behind Deno's back,
 * `write` for one that writes them).
 * @returns The library, or `undefined` (no permission, no library, or a
 * symbol missing).
 *
 * @example Bind libc's getpid where allowed
 * ```ts
 * import { openLibrary } from "./ffi.ts";
 * const libc = openLibrary(["libc.so.6"], {
 *   getpid: { parameters: [], result: "i32" },
 * });
 * console.log(libc ? libc.symbols.getpid() : "no ffi");
 * libc?.close();
 * ```
 */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  names: readonly string[],
  symbols: S,
  permissions: readonly ("ffi" | "read" | "write")[] = ["ffi"],
): Deno.DynamicLibrary<S> | undefined {
  for (const name of permissions) {
    if (Deno.permissions.querySync({ name }).state !== "granted") {
      return undefined;
    }
  }
  for (const name of names) {
    try {
      return Deno.dlopen(name, symbols);
    } catch {
      // not installed under this name, or without one of the symbols
    }
  }
  return undefined;
}

/**
 * `text` as a C string: written into `buffer` when it is ASCII and fits
 * (no allocation, the common case of a file name), else encoded anew;
 * `undefined` if it holds a NUL (no C string can say it).
 *
 * @param text The string.
 * @param buffer A reused buffer (overwritten).
 * @param encoder A reused encoder.
 * @returns The NUL-terminated bytes (`buffer` itself, or a new array).
 *
 * @example Name a file
 * ```ts
 * import assert from "node:assert/strict";
 * import { cString } from "./ffi.ts";
 * const buffer = new Uint8Array(16);
 * assert.equal(cString("a.txt", buffer, new TextEncoder())?.[5], 0);
 * assert.equal(cString("a\0b", buffer, new TextEncoder()), undefined);
 * ```
 */
export function cString(
  text: string,
  buffer: Uint8Array,
  encoder: TextEncoder,
): Uint8Array<ArrayBuffer> | undefined {
  if (text.includes("\0")) return undefined;
  if (text.length < buffer.length) {
    let i = 0;
    for (; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) break;
      buffer[i] = code;
    }
    if (i === text.length) {
      buffer[i] = 0;
      return buffer as Uint8Array<ArrayBuffer>;
    }
  }
  return encoder.encode(`${text}\0`) as Uint8Array<ArrayBuffer>;
}

/**
 * The `errno` a libc call just left on this thread, read through the
 * pointer a bound `__errno_location` returned (0 when it returned none).
 * Valid only right after a call made on this thread: a `nonblocking`
 * call ran on another one.
 *
 * @param location What `__errno_location()` returned.
 * @returns The error number.
 *
 * @example Read errno after a failed call
 * ```ts
 * import assert from "node:assert/strict";
 * import { errnoAt, openLibrary } from "./ffi.ts";
 * const libc = openLibrary(["libc.so.6"], {
 *   close: { parameters: ["i32"], result: "i32" },
 *   __errno_location: { parameters: [], result: "pointer" },
 * });
 * if (libc) {
 *   assert.equal(libc.symbols.close(-1), -1);
 *   assert.equal(errnoAt(libc.symbols.__errno_location()), 9); // EBADF
 *   libc.close();
 * }
 * ```
 */
export function errnoAt(location: Deno.PointerValue): number {
  return location === null
    ? 0
    : new Deno.UnsafePointerView(location).getInt32();
}
