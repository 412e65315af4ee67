/**
 * The server's side of resumable uploads.
 *
 * A `PUT` with the resume flag writes to a temporary file whose name is
 * derived from the upload itself: `.ferry-<hex>.part` in the target folder,
 * where `<hex>` is the first 32 hex digits of the SHA-256 of the target's
 * host path, the size and the client's modification time. The same upload
 * retried after a cut finds the same file, and `READY` tells the client how
 * many bytes of it are there. A cut keeps the file; an integrity failure or
 * a refusal removes it; success renames it into place.
 *
 * Parts nobody comes back for are removed lazily: when a `PUT` goes to a
 * folder, the `.ferry-*.part` files in it that have not been written for
 * {@linkcode STALE_PART_MS} are deleted (each folder is looked at most once
 * per {@linkcode SWEEP_INTERVAL_MS}).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { createHasher, type Hasher } from "../_common/digest.ts";
import * as nodePath from "node:path";
import { type BulkBuffers, copyHashed } from "../_common/copy.ts";
import { untilClosed } from "./until_closed.ts";
import { tempNameOf } from "./temp.ts";
import { FerryError } from "../errors.ts";
import { printable } from "../_common/wire_path.ts";
import type { HostFile } from "./host_file.ts";
import { createInFolder, openExistingInFolder } from "./file_in_folder.ts";
import type { ByteWriter, DigestAlgorithm } from "../protocol.ts";

/** Age, in milliseconds, after which an untouched part is removed: 24 h. */
export const STALE_PART_MS: number = 24 * 60 * 60 * 1000;

/** Each folder is swept for stale parts at most this often: 1 h. */
export const SWEEP_INTERVAL_MS: number = 60 * 60 * 1000;

/**
 * How long a new upload of a part waits for the connection that still
 * holds it (a cut its server side has not noticed yet) before closing it.
 */
export const TAKEOVER_GRACE_MS = 1000;

/** Names of upload temporaries, resumable or not, and of part leases. */
export const PART_NAME: RegExp = /^\.ferry-[0-9a-f]+\.(?:part|lease)$/;

const MAX_SWEPT_FOLDERS = 4096;

/**
 * The name of the resumable part of one upload.
 *
 * @param hostPath The target's host path.
 * @param size The upload's size.
 * @param mtime The client's modification time, if it sent one.
 * @returns `.ferry-<32 hex digits>.part`.
 */
export function resumablePartName(
  hostPath: string,
  size: number,
  mtime: number | undefined,
): string {
  const hex = createHash("sha256")
    .update(`${hostPath}\0${size}\0${mtime ?? ""}`)
    .digest("hex")
    .slice(0, 32);
  return tempNameOf(hex);
}

/** A resumable part, opened and hashed up to where the upload continues. */
export interface OpenPart {
  /** The part, open for reading and writing, positioned at `offset`. */
  file: HostFile;
  /** Bytes already there: where the client continues. */
  offset: number;
  /** Digest of bytes `0..offset` (the session's algorithm), ready for the rest. */
  hash: Hasher;
  /** Whether this call created the part (no earlier one was there). */
  created: boolean;
}

/**
 * Opens (or creates) a resumable part and hashes what it holds. A part
 * longer than the upload is emptied.
 *
 * Whatever sits at the part's name is never followed and never blocks: a
 * new part is created exclusively without following a link, an existing
 * one is opened without following and without blocking, and used only if
 * it is a regular file with one link whose directory entry is that very
 * file (`_server/host_file.ts`); it is emptied through its descriptor,
 * never by name. Given `realRoot`, in strict mode the part is created and
 * checked in its folder opened from the root (`_server/file_in_folder.ts`),
 * so a folder swapped for a link cannot make it land outside.
 *
 * @param path Host path of the part.
 * @param size Size of the whole upload.
 * @param buffers Bulk buffers for hashing.
 * @param options `algorithm`, the session's digest algorithm; `signal`,
 * aborted when the connection closes (hashing stops there); `wirePath`, the
 * upload's path for messages; `realRoot`, the served folder (resolved),
 * for strict mode.
 * @returns The open part.
 * @throws {FerryError} `FORBIDDEN` if something other than a plain file
 * sits at the part's name.
 */
export async function openResumablePart(
  path: string,
  size: number,
  buffers: BulkBuffers,
  options: {
    algorithm: DigestAlgorithm;
    signal?: AbortSignal;
    wirePath?: string;
    realRoot?: string;
  },
): Promise<OpenPart> {
  const { algorithm } = options;
  const signal = options.signal ?? new AbortController().signal;
  const wirePath = options.wirePath ?? "";
  // Without a root (tests of this module), by name from the part's folder.
  const realRoot = options.realRoot ?? nodePath.dirname(path);
  let created = false;
  let file = await openExistingInFolder(realRoot, path, wirePath);
  if (file === undefined) {
    try {
      file = await createInFolder(realRoot, path, wirePath);
      created = true;
    } catch (error) {
      // Taken between the two calls, or a dangling link (which Deno,
      // short of `-A`, resolves before opening): check it as above.
      if ((error as { code?: unknown }).code !== "EEXIST") throw error;
      file = await openExistingInFolder(realRoot, path, wirePath);
      if (file === undefined) {
        throw new FerryError(
          "FORBIDDEN",
          `Upload part is not a plain file: ${printable(wirePath)}`,
          { cause: error },
        );
      }
    }
  }
  try {
    let offset = (await file.stat()).size;
    let hash = await createHasher(algorithm);
    if (offset > size) {
      await file.truncate(0);
      offset = 0;
    } else if (offset > 0) {
      const hashed = await copyHashed(
        untilClosed(file, signal),
        undefined,
        offset,
        hash,
        buffers,
      );
      if (hashed < offset) {
        // Shrunk under us (no one else should write here): start over.
        await file.truncate(0);
        file.seek(0);
        offset = 0;
        hash = await createHasher(algorithm);
      }
    }
    return { file, offset, hash, created };
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * A writer that remembers its last write, so that a failed copy can wait
 * for the write still in flight before the file is closed and measured.
 */
export class TrackedWriter implements ByteWriter {
  #inner: ByteWriter;
  #last: Promise<number> | undefined;

  /**
   * Wraps a writer.
   *
   * @param inner Where the bytes go.
   */
  constructor(inner: ByteWriter) {
    this.#inner = inner;
  }

  /**
   * Writes through to the wrapped writer.
   *
   * @param p The bytes.
   * @returns How many were written.
   */
  write(p: Uint8Array): Promise<number> {
    const writing = this.#inner.write(p);
    this.#last = writing;
    writing.catch(() => {});
    return writing;
  }

  /** Settles once the last write has (whatever its outcome). */
  async settled(): Promise<void> {
    await this.#last?.catch(() => {});
  }
}

/** Which resumable parts are being written, and which folders were swept. */
export class UploadParts {
  #active = new Map<string, { released: Promise<void>; close(): void }>();
  #swept = new Map<string, number>();

  /**
   * Takes a part for one upload. If another connection still holds it (an
   * upload cut on the client's side that the server has not noticed), that
   * one gets {@linkcode TAKEOVER_GRACE_MS} to end, then it is closed.
   *
   * @param path Host path of the part.
   * @param close Closes this upload's connection, should a later upload
   * take the part over.
   * @returns A function that releases the part.
   */
  async claim(path: string, close: () => void): Promise<() => void> {
    while (true) {
      const holder = this.#active.get(path);
      if (holder === undefined) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, TAKEOVER_GRACE_MS);
      });
      await Promise.race([holder.released, grace]);
      clearTimeout(timer);
      if (this.#active.get(path) === holder) {
        holder.close();
        await holder.released;
      }
    }
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const entry = { released, close };
    this.#active.set(path, entry);
    return () => {
      if (this.#active.get(path) === entry) this.#active.delete(path);
      release();
    };
  }

  /**
   * Removes the upload temporaries in `folder` untouched for
   * {@linkcode STALE_PART_MS}, except those being written; does nothing if
   * the folder was swept less than {@linkcode SWEEP_INTERVAL_MS} ago.
   * Errors (a file that vanished, a folder that cannot be read) are
   * ignored.
   *
   * @param folder Host path of the folder.
   * @param now The current time, `Date.now()`.
   * @returns How many files were removed.
   */
  async sweep(folder: string, now: number = Date.now()): Promise<number> {
    const last = this.#swept.get(folder);
    if (last !== undefined && now - last < SWEEP_INTERVAL_MS) return 0;
    if (this.#swept.size >= MAX_SWEPT_FOLDERS) this.#swept.clear();
    this.#swept.set(folder, now);
    let removed = 0;
    try {
      for await (const entry of Deno.readDir(folder)) {
        if (!entry.isFile || !PART_NAME.test(entry.name)) continue;
        const path = nodePath.join(folder, entry.name);
        if (this.#active.has(path)) continue;
        try {
          const mtime = (await Deno.lstat(path)).mtime?.getTime();
          if (mtime !== undefined && now - mtime >= STALE_PART_MS) {
            await Deno.remove(path);
            removed++;
          }
        } catch {
          // Gone already, or not ours to remove.
        }
      }
    } catch {
      // An unreadable folder is left alone.
    }
    return removed;
  }
}
