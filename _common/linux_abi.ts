/**
 * What ferry's `Deno.dlopen` bindings of libc (the server's strict mode in
 * `_server/dir_handle.ts` and its `sendfile` in `_server/zero_copy.ts`, the
 * client's small-file reads and writes in `_client/native_read.ts` and
 * `_client/native_write.ts`) need to know of Linux's binary interface: flag
 * and `errno` values, the offsets of `struct stat`'s fields on each
 * architecture, the reading of its 64-bit fields and the writing of
 * `struct timespec` pairs. One place, so that the bindings cannot
 * disagree.
 *
 * @module
 */

/** `open` flags shared by every Linux architecture ferry supports. */
export const O_RDONLY = 0;
/** Open for reading and writing. */
export const O_RDWR = 2;
/** Create the file. */
export const O_CREAT = 0o100;
/** With `O_CREAT`: fail if it exists. */
export const O_EXCL = 0o200;
/** Never become the controlling terminal. */
export const O_NOCTTY = 0o400;
/** Never block (a FIFO's open, a locked file). */
export const O_NONBLOCK = 0o4000;
/** Closed in child processes. */
export const O_CLOEXEC = 0o2000000;
/** `*at` calls: the descriptor itself when the name is empty. */
export const AT_EMPTY_PATH = 0x1000;
/** The file-type bits of `st_mode`. */
export const S_IFMT = 0o170000;
/** `st_mode` type of a regular file. */
export const S_IFREG = 0o100000;
/** `st_mode` type of a folder. */
export const S_IFDIR = 0o040000;

/** Open for writing only. */
export const O_WRONLY = 1;
/** `*at` calls: relative to the working folder. */
export const AT_FDCWD = -100;
/** `*at` calls: act on a link itself, never on its target. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** `st_mode` type of a symbolic link. */
export const S_IFLNK = 0o120000;
/** `utimensat`/`futimens`: this time is now. */
export const UTIME_NOW = (1 << 30) - 1;

/** `errno`: no such file or folder. */
export const ENOENT = 2;
/** `errno`: interrupted by a signal; call again. */
export const EINTR = 4;
/** `errno`: would block (a non-blocking socket's buffer is full). */
export const EAGAIN = 11;
/** `errno`: a path segment is not a folder. */
export const ENOTDIR = 20;
/** `errno`: invalid argument (also: a call the file system lacks). */
export const EINVAL = 22;
/** `errno`: too many links, or a link where `O_NOFOLLOW` was asked. */
export const ELOOP = 40;
/** `errno`: the kernel has no such system call. */
export const ENOSYS = 38;

/** Per-architecture flag values and `struct stat` offsets. */
export interface LinuxLayout {
  /** `O_DIRECTORY`. */
  O_DIRECTORY: number;
  /** `O_NOFOLLOW`. */
  O_NOFOLLOW: number;
  /** `sizeof(struct stat)`. */
  statBytes: number;
  /** Offset of `st_ino`. */
  ino: number;
  /** Offset of `st_mode` (32 bits). */
  mode: number;
  /** Offset of `st_nlink`. */
  nlink: number;
  /** Width of `st_nlink`. */
  nlinkBytes: 4 | 8;
  /** Offset of `st_size`. */
  size: number;
  /** Offset of `st_mtim` (`struct timespec`). */
  mtimeSec: number;
  /** Offset of `st_ctim` (`struct timespec`). */
  ctimeSec: number;
}

const LAYOUTS: Partial<Record<string, LinuxLayout>> = {
  x86_64: {
    O_DIRECTORY: 0o200000,
    O_NOFOLLOW: 0o400000,
    statBytes: 144,
    ino: 8,
    nlink: 16,
    nlinkBytes: 8,
    mode: 24,
    size: 48,
    mtimeSec: 88,
    ctimeSec: 104,
  },
  aarch64: {
    O_DIRECTORY: 0o40000,
    O_NOFOLLOW: 0o100000,
    statBytes: 128,
    ino: 8,
    mode: 16,
    nlink: 20,
    nlinkBytes: 4,
    size: 48,
    mtimeSec: 88,
    ctimeSec: 104,
  },
};

/**
 * This process's layout: on Linux on x86-64 or arm64, else `undefined`
 * (no libc binding is used there).
 *
 * @returns The layout, or `undefined`.
 *
 * @example Where st_size lies here
 * ```ts
 * import { linuxLayout } from "./linux_abi.ts";
 * console.log(linuxLayout()?.size);
 * ```
 */
export function linuxLayout(): LinuxLayout | undefined {
  if (Deno.build.os !== "linux") return undefined;
  return LAYOUTS[Deno.build.arch];
}

/**
 * A little-endian 64-bit field as a number, from its two halves (no BigInt
 * per field; exact up to 2^53, as `Number(BigInt)` was).
 *
 * @param view The structure.
 * @param offset Where the field starts.
 * @param signed Whether the field is signed.
 * @returns Its value.
 *
 * @example Read a size
 * ```ts
 * import assert from "node:assert/strict";
 * import { int64At } from "./linux_abi.ts";
 * const view = new DataView(new ArrayBuffer(8));
 * view.setBigInt64(0, 5_000_000_000n, true);
 * assert.equal(int64At(view, 0, true), 5_000_000_000);
 * ```
 */
export function int64At(
  view: DataView,
  offset: number,
  signed: boolean,
): number {
  const high = signed
    ? view.getInt32(offset + 4, true)
    : view.getUint32(offset + 4, true);
  return high * 2 ** 32 + view.getUint32(offset, true);
}

/**
 * A `struct timespec` at `offset` of a `struct stat`, in milliseconds.
 *
 * @param view The structure.
 * @param offset Where the `timespec` starts.
 * @returns Milliseconds since the epoch.
 *
 * @example Read a time
 * ```ts
 * import assert from "node:assert/strict";
 * import { millisecondsAt } from "./linux_abi.ts";
 * const view = new DataView(new ArrayBuffer(16));
 * view.setBigInt64(0, 2n, true);
 * view.setBigInt64(8, 500_000_000n, true);
 * assert.equal(millisecondsAt(view, 0), 2500);
 * ```
 */
export function millisecondsAt(view: DataView, offset: number): number {
  return int64At(view, offset, true) * 1000 +
    Math.floor(int64At(view, offset + 8, true) / 1e6);
}

/**
 * Writes the `struct timespec[2]` of `utimensat`/`futimens` into `into`
 * (8 little-endian 32-bit words, no BigInt): the access time, now or
 * `mtime`, then the modification time `mtime` (milliseconds).
 *
 * @param into Eight words, reused by the caller.
 * @param mtime The modification time, in milliseconds.
 * @param accessNow Set the access time to now (`UTIME_NOW`), else `mtime`.
 * @returns `into`.
 *
 * @example A time of 1.5 s, access now
 * ```ts
 * import assert from "node:assert/strict";
 * import { timespecPair, UTIME_NOW } from "./linux_abi.ts";
 * const words = timespecPair(new Int32Array(8), 1500, true);
 * assert.deepEqual([...words], [0, 0, UTIME_NOW, 0, 1, 0, 500_000_000, 0]);
 * ```
 */
export function timespecPair(
  into: Int32Array<ArrayBuffer>,
  mtime: number,
  accessNow: boolean,
): Int32Array<ArrayBuffer> {
  const seconds = Math.floor(mtime / 1000);
  const nanoseconds = Math.round((mtime - seconds * 1000) * 1e6);
  if (accessNow) {
    setWords(into, 0, 0);
    setWords(into, 2, UTIME_NOW);
  } else {
    setWords(into, 0, seconds);
    setWords(into, 2, nanoseconds);
  }
  setWords(into, 4, seconds);
  setWords(into, 6, nanoseconds);
  return into;
}

/** A 64-bit field as two little-endian 32-bit words at `at`. */
function setWords(into: Int32Array, at: number, value: number): void {
  const high = Math.floor(value / 0x1_0000_0000);
  into[at] = (value - high * 0x1_0000_0000) | 0;
  into[at + 1] = high;
}
