/**
 * What ferry's `Deno.dlopen` bindings of libc (the server's strict mode in
 * `_server/dir_handle.ts`, the client's small-file reads in
 * `_client/native_read.ts`) need to know of Linux's binary interface: flag
 * values, the offsets of `struct stat`'s fields on each architecture, and
 * the reading of its 64-bit fields. One place, so that the two bindings
 * cannot disagree.
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
