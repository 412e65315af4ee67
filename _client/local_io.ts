/**
 * Local files as the client reads and writes them during a transfer: a
 * reader and a writer whose errors become `LOCAL` errors naming the path.
 *
 * @module
 */

import { messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import type { ByteReader, ByteWriter } from "../protocol.ts";
import { handled } from "./handled.ts";

/**
 * Wraps a local I/O error of `path` as `LOCAL` (a `FerryError` passes).
 *
 * @param action What failed, such as `read` (`Cannot read PATH: ...`).
 * @param path The local path.
 * @param error What was thrown.
 * @returns The error to throw.
 */
export function localError(
  action: string,
  path: string,
  error: unknown,
): FerryError {
  if (error instanceof FerryError) return error;
  return new FerryError(
    "LOCAL",
    `Cannot ${action} ${path}: ${messageOf(error)}`,
    { cause: error },
  );
}

/**
 * A reader over a local file whose errors become `LOCAL`.
 *
 * @param file The open file.
 * @param path Its path, for the message.
 * @returns The reader.
 */
export function localReader(file: Deno.FsFile, path: string): ByteReader {
  return {
    async read(p: Uint8Array): Promise<number | null> {
      try {
        return await file.read(p);
      } catch (error) {
        throw localError("read", path, error);
      }
    },
  };
}

/**
 * A writer into a local file whose errors become `LOCAL`; a failed write
 * nobody awaits is not an unhandled rejection.
 *
 * @param file The open file.
 * @param path Its path, for the message.
 * @returns The writer.
 */
export function localWriter(file: Deno.FsFile, path: string): ByteWriter {
  async function write(p: Uint8Array): Promise<number> {
    try {
      return await file.write(p);
    } catch (error) {
      throw localError("write", path, error);
    }
  }
  return {
    write(p: Uint8Array): Promise<number> {
      return handled(write(p));
    },
  };
}
