/**
 * The records `getdents64` fills a buffer with (`struct linux_dirent64`),
 * read into names (and their types), and the loop that reads a folder to
 * its end ({@linkcode readFolderNames}), for the libc bindings that read a
 * folder from a descriptor: the server's strict mode
 * (`_server/dir_handle.ts`) and the client's local walk
 * (`_client/native_read.ts`).
 *
 * @module
 */

/** `d_type` of a regular file. */
export const DT_REG = 8;

/** Bytes of folder records {@linkcode readFolderNames} asks for per call. */
export const DENTS_BUFFER_BYTES = 32 * 1024;

/** `errno`: a call interrupted by a signal, retried. */
const EINTR = 4;

/** Offsets of `d_reclen`, `d_type` and `d_name` in a record. */
const DIRENT_LENGTH = 16;
const DIRENT_TYPE = 18;
const DIRENT_NAME = 19;
const DOT = 0x2e;
const NAME_DECODER = new TextDecoder("utf-8", { fatal: true });
/** One UTF-16 unit per byte (windows-1252), ASCII as itself. */
const BYTE_DECODER = new TextDecoder("windows-1252");
const NOT_ASCII = /[\u0080-\uffff]/;
/** A name that is not UTF-8, for a report (U+FFFD for what is not). */
const LOSSY_DECODER = new TextDecoder("utf-8");

/**
 * Appends the names of the first `n` bytes of `getdents64` records in
 * `buffer` to `names`, and their `d_type` to `types` if given: `.` and
 * `..` are left out, and so is a name that is not UTF-8 (no wire path
 * names it, and no string would open it again): it goes to `undecodable`
 * if given, decoded with U+FFFD for its bad bytes, to be reported. A
 * record cut short or running past `n` ends the reading.
 *
 * @param buffer What `getdents64` filled.
 * @param n The byte count it returned.
 * @param names Where the names go, in the folder's order.
 * @param types Where each name's `d_type` goes (`DT_REG` for a regular
 * file, 0 when the file system does not say).
 * @param undecodable Where names that are not UTF-8 go.
 *
 * @example One record
 * ```ts
 * import assert from "node:assert/strict";
 * import { DT_REG, readDirents } from "./dirents.ts";
 * const record = new Uint8Array(24);
 * new DataView(record.buffer).setUint16(16, 24, true); // d_reclen
 * record[18] = DT_REG;
 * record.set(new TextEncoder().encode("a.txt"), 19);
 * const names: string[] = [];
 * const types: number[] = [];
 * readDirents(record, 24, names, types);
 * assert.deepEqual([names, types], [["a.txt"], [DT_REG]]);
 * ```
 */
export function readDirents(
  buffer: Uint8Array,
  n: number,
  names: string[],
  types?: number[],
  undecodable?: string[],
): void {
  // One decoding of all the records, a character per byte: each name is
  // then a slice of it (a decoding per name costs a call into the runtime
  // each); only a name that is not ASCII is decoded again, as UTF-8.
  const text = BYTE_DECODER.decode(buffer.subarray(0, n));
  for (let at = 0; at + DIRENT_NAME < n;) {
    const length = buffer[at + DIRENT_LENGTH] |
      (buffer[at + DIRENT_LENGTH + 1] << 8);
    if (length <= DIRENT_NAME || at + length > n) break;
    const start = at + DIRENT_NAME;
    let end = text.indexOf("\0", start);
    if (end < 0 || end > at + length) end = at + length;
    const type = buffer[at + DIRENT_TYPE];
    at += length;
    const size = end - start;
    if (
      size === 0 || (buffer[start] === DOT &&
        (size === 1 || (size === 2 && buffer[start + 1] === DOT)))
    ) continue;
    let name = text.slice(start, end);
    if (NOT_ASCII.test(name)) {
      try {
        name = NAME_DECODER.decode(buffer.subarray(start, end));
      } catch {
        undecodable?.push(LOSSY_DECODER.decode(buffer.subarray(start, end)));
        continue; // not UTF-8
      }
    }
    names.push(name);
    types?.push(type);
  }
}

/**
 * A folder open for reading, and how to read its records: what
 * {@linkcode readFolderNames} needs of a libc binding.
 *
 * @example A folder of no names
 * ```ts
 * import type { FolderRecords } from "./dirents.ts";
 * const empty: FolderRecords = {
 *   getdents64: () => 0,
 *   errno: () => 0,
 *   buffer: new Uint8Array(64),
 * };
 * console.log(empty.buffer.length);
 * ```
 */
export interface FolderRecords {
  /** libc's `getdents64(fd, buffer, bytes)`. */
  getdents64(
    fd: number,
    buffer: Uint8Array<ArrayBuffer>,
    bytes: bigint,
  ): number | bigint;
  /** `errno` after a failed call. */
  errno(): number;
  /** Where the records are read (reused; {@linkcode DENTS_BUFFER_BYTES}). */
  buffer: Uint8Array<ArrayBuffer>;
}

/**
 * Reads the folder open as `fd` to its end with `getdents64` (a call
 * interrupted by a signal, `EINTR`, is made again), appending its names
 * (and types) as {@linkcode readDirents} does.
 *
 * @param records The binding and its buffer.
 * @param fd A folder open for reading, not read from before.
 * @param names Where the names go, in the folder's order.
 * @param types Where each name's `d_type` goes.
 * @param undecodable Where names that are not UTF-8 go.
 * @returns 0 once the folder is read, else the `errno` of the call that
 * failed (`ENOENT` for a folder deleted since it was opened, `ENOTDIR`
 * for a descriptor of something else).
 *
 * @example A folder of one file, read in two calls
 * ```ts
 * import assert from "node:assert/strict";
 * import { DT_REG, readFolderNames } from "./dirents.ts";
 * const record = new Uint8Array(24);
 * new DataView(record.buffer).setUint16(16, 24, true); // d_reclen
 * record[18] = DT_REG;
 * record.set(new TextEncoder().encode("a.txt"), 19);
 * let calls = 0;
 * const names: string[] = [];
 * const errno = readFolderNames({
 *   getdents64: (_fd, buffer) => {
 *     if (calls++ > 0) return 0;
 *     buffer.set(record);
 *     return record.length;
 *   },
 *   errno: () => 0,
 *   buffer: new Uint8Array(64),
 * }, 3, names);
 * assert.deepEqual([errno, names], [0, ["a.txt"]]);
 * ```
 */
export function readFolderNames(
  records: FolderRecords,
  fd: number,
  names: string[],
  types?: number[],
  undecodable?: string[],
): number {
  const buffer = records.buffer;
  const bytes = BigInt(buffer.length);
  for (;;) {
    const n = Number(records.getdents64(fd, buffer, bytes));
    if (n === 0) return 0;
    if (n < 0) {
      const errno = records.errno();
      if (errno === EINTR) continue;
      return errno;
    }
    readDirents(buffer, n, names, types, undecodable);
  }
}
