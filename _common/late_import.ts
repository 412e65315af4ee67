/**
 * Imports a module when it is needed without Deno reading it when the
 * process starts.
 *
 * Deno 2.9 reads every module a program may load, at start: the static
 * imports and the target of every `import()` whose specifier is a string
 * literal, and their own imports in turn, before the first line runs.
 * `client.ts --help` thus read the whole client (55 files) to print its
 * usage. A specifier that is not a literal is read only when the import
 * runs. The price: such an import of a local file needs `--allow-read`
 * (the client's commands have it), `deno compile` must be told to include
 * the module (`--include`, in the `compile` task), and `deno publish`
 * warns that it cannot analyse this one import. Use it for code that runs
 * only with read access anyway; keep a literal `import()` elsewhere.
 *
 * @module
 */

/**
 * Imports a module; the specifier is not a literal, so Deno does not read
 * the module at start.
 *
 * @typeParam T The module's type, `typeof import("./module.ts")` (a type
 * only: Deno does not load the module for that, and `deno check` and
 * `deno cache` still see it).
 * @param path The module, relative to `base`.
 * @param base The importing module's `import.meta.url`.
 * @returns The module's namespace.
 *
 * @example Import a module of this folder
 * ```ts
 * import assert from "node:assert/strict";
 * import { lateImport } from "./late_import.ts";
 * const { formatBytes } = await lateImport<
 *   typeof import("./format_bytes.ts")
 * >("./format_bytes.ts", import.meta.url);
 * assert.equal(typeof formatBytes, "function");
 * ```
 */
export function lateImport<T>(path: string, base: string): Promise<T> {
  return import(new URL(path, base).href);
}
