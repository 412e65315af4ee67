/**
 * {@linkcode HostFile}: a file the server opened itself with `node:fs`
 * flags that Deno's own `Deno.open` cannot pass (`O_NOFOLLOW`, `O_NONBLOCK`,
 * `O_EXCL` without following a link), read and written through that one
 * descriptor at a position it keeps.
 *
 * Everything the server reads or writes on behalf of a peer goes through
 * one of the three openers here, so that nothing planted in the root (a
 * FIFO, a device, a symbolic link at a predictable name) can block a
 * request or redirect a write:
 *
 * - {@linkcode openRegularForReading}: `O_RDONLY | O_NONBLOCK | O_NOCTTY`,
 *   refused unless `fstat` says regular file.
 * - {@linkcode createExclusive}: `O_CREAT | O_EXCL | O_NOFOLLOW`, so an
 *   existing name of any kind (a dangling link included) is never reused.
 * - {@linkcode openExistingPart}: `O_RDWR | O_NOFOLLOW | O_NONBLOCK`, then
 *   refused unless it is a regular file with one link whose directory entry
 *   (`lstat`) is the same device and inode.
 *
 * @module
 */

import {
  closeSync,
  constants as fsConstants,
  fdatasync,
  fstat,
  fstatSync as fstatSyncRaw,
  ftruncate,
  lstatSync,
  openSync,
  read,
  type Stats,
  write,
} from "node:fs";
import { FerryError } from "../errors.ts";
import { printable } from "../_common/wire_path.ts";
import { strictLibc } from "./dir_handle.ts";

/** Read-only, never blocking on a FIFO, never a controlling terminal. */
export const READ_FLAGS: number = fsConstants.O_RDONLY |
  fsConstants.O_NONBLOCK | (fsConstants.O_NOCTTY ?? 0);

const NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const CREATE_FLAGS = fsConstants.O_RDWR | fsConstants.O_CREAT |
  fsConstants.O_EXCL | NOFOLLOW | fsConstants.O_NONBLOCK;
const PART_FLAGS = fsConstants.O_RDWR | NOFOLLOW | fsConstants.O_NONBLOCK;

/**
 * An open file, read and written at a position of its own.
 *
 * @example Read a file the server opened
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRegularForReading } from "./host_file.ts";
 * const path = await Deno.makeTempFile({ prefix: "ferry_test_" });
 * await Deno.writeTextFile(path, "hi");
 * const file = openRegularForReading(path, "hi.txt");
 * try {
 *   const bytes = new Uint8Array(8);
 *   assert.equal(await file.read(bytes), 2);
 * } finally {
 *   file.close();
 *   await Deno.remove(path);
 * }
 * ```
 */
export class HostFile {
  #fd: number;
  #position = 0;
  #closed = false;
  /** A read on the blocking pool: the descriptor outlives it. */
  #reading: Promise<number> | undefined;

  /**
   * Wraps a descriptor the caller opened (and no longer closes itself).
   *
   * @param fd A `node:fs` descriptor.
   */
  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The descriptor (for `/proc/self/fd/N`). */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Reads at the current position, and moves it.
   *
   * @param p Where to put the bytes.
   * @returns How many bytes were read, `null` at the end of the file.
   */
  async read(p: Uint8Array): Promise<number | null> {
    const libc = strictLibc();
    if (libc !== undefined && p.length > 0) {
      // The fast path where `--allow-ffi` is granted; a failure is read
      // again through node:fs below, which reports its errno.
      const reading = libc.pread(
        this.#fd,
        p as Uint8Array<ArrayBuffer>,
        this.#position,
      );
      this.#reading = reading;
      const n = await reading;
      this.#reading = undefined;
      if (n === 0) return null;
      if (n > 0) {
        this.#position += n;
        return n;
      }
    }
    return await new Promise((resolve, reject) => {
      read(this.#fd, p, 0, p.length, this.#position, (error, n) => {
        if (error) return reject(error);
        if (n === 0 && p.length > 0) return resolve(null);
        this.#position += n;
        resolve(n);
      });
    });
  }

  /**
   * Writes at the current position, and moves it.
   *
   * @param p The bytes.
   * @returns How many were written.
   */
  write(p: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      write(this.#fd, p, 0, p.length, this.#position, (error, n) => {
        if (error) return reject(error);
        this.#position += n;
        resolve(n);
      });
    });
  }

  /**
   * Moves the position.
   *
   * @param offset Bytes from the start.
   */
  seek(offset: number): void {
    this.#position = offset;
  }

  /**
   * Cuts the file through its descriptor (never by name).
   *
   * @param length The new length.
   * @returns Once done.
   */
  truncate(length: number): Promise<void> {
    return new Promise((resolve, reject) => {
      ftruncate(this.#fd, length, (error) => error ? reject(error) : resolve());
    });
  }

  /**
   * Flushes the data to disk.
   *
   * @returns Once on disk.
   */
  syncData(): Promise<void> {
    return new Promise((resolve, reject) => {
      fdatasync(this.#fd, (error) => error ? reject(error) : resolve());
    });
  }

  /**
   * The descriptor's own status (`fstat`).
   *
   * @returns The status as a `Deno.FileInfo`.
   */
  stat(): Promise<Deno.FileInfo> {
    return new Promise((resolve, reject) => {
      fstat(this.#fd, (error, stats) => {
        if (error) return reject(error);
        resolve(fileInfoOf(stats));
      });
    });
  }

  /** Closes the descriptor (once; later calls do nothing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const fd = this.#fd;
    // A read still running on another thread must never see the number
    // reused by the next open: close once it is over.
    if (this.#reading === undefined) closeSync(fd);
    else this.#reading.finally(() => closeSync(fd)).catch(() => {});
  }
}

/**
 * Opens a file for reading without blocking (a FIFO or a device opens at
 * once) and refuses it unless it is a regular file.
 *
 * @param hostPath The host path.
 * @param wirePath The path from the request, for messages.
 * @returns The open file.
 * @throws {FerryError} `FORBIDDEN` if it is not a regular file.
 * @throws {Error} The `node:fs` error of the open (the caller maps it).
 *
 * @example Refuse a folder
 * ```ts
 * import assert from "node:assert/strict";
 * import { openRegularForReading } from "./host_file.ts";
 * const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
 * try {
 *   assert.throws(() => openRegularForReading(dir, "dir"), /Not a file/);
 * } finally {
 *   await Deno.remove(dir);
 * }
 * ```
 */
export function openRegularForReading(
  hostPath: string,
  wirePath: string,
): HostFile {
  const fd = openSync(hostPath, READ_FLAGS);
  const file = new HostFile(fd);
  try {
    const stats = fstatSyncInfo(fd);
    if (!stats.isFile) {
      throw new FerryError("FORBIDDEN", `Not a file: ${printable(wirePath)}`);
    }
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Creates a new file that no name existed for (no link is followed, a
 * dangling one included), open for reading and writing.
 *
 * @param hostPath The host path.
 * @returns The open, empty file.
 * @throws {Error} The `node:fs` error (`EEXIST` if the name is taken).
 *
 * @example Create a file, and refuse the same name again
 * ```ts
 * import assert from "node:assert/strict";
 * import { createExclusive } from "./host_file.ts";
 * const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
 * try {
 *   createExclusive(`${dir}/a`).close();
 *   assert.throws(() => createExclusive(`${dir}/a`), { code: "EEXIST" });
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function createExclusive(hostPath: string): HostFile {
  return new HostFile(openSync(hostPath, CREATE_FLAGS, 0o666));
}

/**
 * Opens an upload part that is already there, or `undefined` if none is:
 * without following a link, without blocking, and only if it is a regular
 * file with one link whose directory entry is the very file opened.
 *
 * @param hostPath The part's host path.
 * @param wirePath The upload's path, for messages.
 * @returns The open part, or `undefined` if the name is free.
 * @throws {FerryError} `FORBIDDEN` if something else sits at that name (a
 * link, a FIFO, a folder, a file with other names).
 *
 * @example Refuse a symbolic link
 * ```ts
 * import assert from "node:assert/strict";
 * import { openExistingPart } from "./host_file.ts";
 * const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
 * try {
 *   assert.equal(openExistingPart(`${dir}/p`, "p"), undefined);
 *   await Deno.symlink("/etc/hostname", `${dir}/p`);
 *   assert.throws(() => openExistingPart(`${dir}/p`, "p"), /part/);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export function openExistingPart(
  hostPath: string,
  wirePath: string,
): HostFile | undefined {
  let fd: number;
  try {
    fd = openSync(hostPath, PART_FLAGS);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT") return undefined;
    if (code === "ELOOP" || code === "EISDIR" || code === "ENXIO") {
      throw badPart(wirePath, error);
    }
    throw error;
  }
  const file = new HostFile(fd);
  try {
    const opened = fstatSyncInfo(fd);
    let named: Stats;
    try {
      named = lstatSync(hostPath);
    } catch (error) {
      throw badPart(wirePath, error);
    }
    if (
      !opened.isFile || opened.nlink !== 1 || !named.isFile() ||
      named.dev !== opened.dev || named.ino !== opened.ino
    ) {
      throw badPart(wirePath);
    }
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

function badPart(wirePath: string, cause?: unknown): FerryError {
  return new FerryError(
    "FORBIDDEN",
    `Upload part is not a plain file: ${printable(wirePath)}`,
    { cause },
  );
}

function fstatSyncInfo(fd: number): Deno.FileInfo {
  return fileInfoOf(fstatSyncRaw(fd));
}

/**
 * A `node:fs` status as a `Deno.FileInfo`.
 *
 * @param stats The status.
 * @returns The same fields under Deno's names.
 *
 * @example Convert a status
 * ```ts
 * import assert from "node:assert/strict";
 * import { lstatSync } from "node:fs";
 * import { fileInfoOf } from "./host_file.ts";
 * assert(fileInfoOf(lstatSync(".")).isDirectory);
 * ```
 */
export function fileInfoOf(stats: Stats): Deno.FileInfo {
  return {
    isFile: stats.isFile(),
    isDirectory: stats.isDirectory(),
    isSymlink: stats.isSymbolicLink(),
    size: stats.size,
    mtime: stats.mtime,
    atime: stats.atime,
    birthtime: stats.birthtime,
    ctime: stats.ctime,
    dev: stats.dev,
    ino: stats.ino,
    mode: stats.mode,
    nlink: stats.nlink,
    uid: stats.uid,
    gid: stats.gid,
    rdev: stats.rdev,
    blksize: stats.blksize,
    blocks: stats.blocks,
    isBlockDevice: stats.isBlockDevice(),
    isCharDevice: stats.isCharacterDevice(),
    isFifo: stats.isFIFO(),
    isSocket: stats.isSocket(),
  };
}
