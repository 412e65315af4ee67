/**
 * The one way ferry opens a system library through `Deno.dlopen`: only
 * where the permissions it needs are granted (no prompt), trying each
 * name in turn, and `undefined` where none loads, so that every caller
 * falls back to its plain-Deno path. Used by the server's strict mode
 * (`_server/dir_handle.ts`), the client's small-file reads
 * (`_client/native_read.ts`) and native XXH3 (`native_xxh3.ts`).
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
 * needed; add `read` for a binding that reads files behind Deno's back).
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
  permissions: readonly ("ffi" | "read")[] = ["ffi"],
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
