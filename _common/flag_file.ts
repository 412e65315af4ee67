/**
 * Reads a file named by a command-line flag (`--cert`, `--key`,
 * `--token-file`), turning a failure into one readable line.
 *
 * @module
 */

import { FerryError } from "../errors.ts";

/**
 * Reads the text file at `path`, which the user gave with `flag`.
 *
 * @param path The file.
 * @param flag The flag that named it, for the message (`--cert`).
 * @returns The file's text.
 * @throws {FerryError} `LOCAL` with `Cannot read FLAG PATH: REASON` if the
 * file cannot be read (not found, permission denied, is a folder, ...).
 *
 * @example Report a missing file
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFlagFile } from "./flag_file.ts";
 * try {
 *   await readFlagFile("/no/such/ferry.pem", "--cert");
 * } catch (error) {
 *   assert(
 *     (error as Error).message.startsWith("Cannot read --cert /no/such/ferry.pem: "),
 *   );
 * }
 * ```
 */
export async function readFlagFile(
  path: string,
  flag: string,
): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "not found"
      : error instanceof Deno.errors.PermissionDenied ||
          error instanceof Deno.errors.NotCapable
      ? "permission denied"
      : error instanceof Deno.errors.IsADirectory
      ? "is a folder"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new FerryError("LOCAL", `Cannot read ${flag} ${path}: ${reason}`, {
      cause: error,
    });
  }
}
