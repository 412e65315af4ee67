/**
 * Write errors of an upload: its file writes go through an
 * {@linkcode UploadSink}: the first failure (disk full, file too large, I/O
 * error) removes the temporary file, the rest of the upload is read and
 * dropped so that the connection stays in step, and the client gets
 * `ERROR INTERNAL` with `Write failed: ...`.
 *
 * @module
 */

import { lowerFirst, messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import type { ByteWriter } from "../protocol.ts";

/** A file that can be written and flushed: `Deno.FsFile` or `HostFile`. */
export interface SyncedWriter extends ByteWriter {
  /** Flushes the data written to disk. */
  syncData(): Promise<void>;
}

/**
 * Where an upload's bytes are written: the temporary file until a write
 * fails, then nowhere.
 *
 * After the first failed write the temporary file is removed at once (its
 * space is freed while the rest of the upload is read and dropped), and
 * {@linkcode UploadSink.check} reports the failure once the client has
 * sent everything, so the connection stays in step.
 *
 * @example Write through a sink
 * ```ts ignore
 * import { UploadSink } from "./upload_sink.ts";
 * const file = await Deno.open("upload.part", { write: true, createNew: true });
 * const sink = new UploadSink(file, "upload.part");
 * await sink.write(new Uint8Array(10));
 * sink.check();
 * await sink.sync();
 * file.close();
 * ```
 */
export class UploadSink implements ByteWriter {
  #file: SyncedWriter;
  #path: string;
  #error: unknown = undefined;

  /**
   * Wraps an open temporary file.
   *
   * @param file The temporary file, open for writing.
   * @param path Its host path, removed when a write fails.
   */
  constructor(file: SyncedWriter, path: string) {
    this.#file = file;
    this.#path = path;
  }

  /** Whether a write has failed. */
  get failed(): boolean {
    return this.#error !== undefined;
  }

  /**
   * Writes to the file, or drops the bytes after a failure.
   *
   * @param p The bytes.
   * @returns How many were taken.
   */
  async write(p: Uint8Array): Promise<number> {
    if (this.#error === undefined) {
      try {
        return await this.#file.write(p);
      } catch (error) {
        this.#fail(error);
      }
    }
    return p.length;
  }

  /**
   * Throws if a write has failed.
   *
   * @throws {FerryError} `INTERNAL` with `Write failed: ...`.
   */
  check(): void {
    if (this.#error !== undefined) throw writeFailed(this.#error);
  }

  /**
   * Flushes the file to disk.
   *
   * @returns A promise that settles once the data is on disk.
   * @throws {FerryError} `INTERNAL` with `Write failed: ...` if it cannot
   * be (the temporary file is then removed).
   */
  async sync(): Promise<void> {
    this.check();
    try {
      await this.#file.syncData();
    } catch (error) {
      this.#fail(error);
      this.check();
    }
  }

  #fail(error: unknown): void {
    this.#error = error;
    try {
      // One unlink, synchronous so that no operation outlives the request.
      Deno.removeSync(this.#path);
    } catch {
      // Removed again (and the error ignored) when the request ends.
    }
  }
}

/** `Write failed: file too large (os error 27)`: the OS reason, no path. */
function writeFailed(error: unknown): FerryError {
  // Deno appends the host path to some messages: keep it on the server.
  const reason = lowerFirst(
    messageOf(error).replace(/: (?:'[^']*'|"[^"]*"|\/\S*).*$/, ""),
  );
  return new FerryError("INTERNAL", `Write failed: ${reason}`, {
    cause: error,
  });
}
