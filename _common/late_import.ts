/**
 * Imports a module when it is needed without Deno reading it when the
 * process starts.
 *
 * Deno 2.9 reads every module a program may load, at start: the static
 * imports and the target of every `import()` whose specifier is a string
 * literal, and their own imports in turn, before the first line runs.
 * `client.ts --help` thus read the whole client (55 files) to print its
 * usage. A specifier that is not a literal is read only when the import
 * runs. The price: such an import of a local file needs read access to it
 * (the client's documented `--allow-read` gives it; so does Deno's own
 * `lazy-dynamic-imports` mode, which needs it too), `deno compile` must be
 * told to include the module (`_client/late_modules.ts`, in the `compile`
 * task), and `deno publish` warns that it cannot analyse this one import.
 * Imported from JSR, the modules are fetched like any other (no read access
 * needed).
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
 * @throws {Deno.errors.NotCapable} If the module is a local file that
 * `--allow-read` does not cover, saying so in one line.
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
export async function lateImport<T>(path: string, base: string): Promise<T> {
  const url = new URL(path, base);
  try {
    return await import(url.href);
  } catch (error) {
    // Deno reports a module it may not read as a TypeError whose message
    // goes on with the importing line.
    const first = String((error as Error)?.message ?? error).split("\n")[0];
    if (url.protocol === "file:" && /^Requires read access/.test(first)) {
      throw new Deno.errors.NotCapable(
        `Cannot load ${url.pathname}, which ferry imports when it is first needed: --allow-read must cover ferry's folder (${first})`,
        { cause: error },
      );
    }
    throw error;
  }
}
