/**
 * Reading a small local file whole with four libc calls (`open`, `read`,
 * `fstatat(AT_EMPTY_PATH)`, `close`) through `Deno.dlopen`, when the
 * client was granted `--allow-ffi` and an unrestricted `--allow-read` (libc
 * does not ask Deno's permissions) on Linux (x86-64 or arm64). A tree of
 * thousands of small files reads each one this way: `Deno.openSync`,
 * `readSync`, `statSync` and `close` cost about twice as much (a resource,
 * a `Deno.FileInfo` with its dates, a call into the runtime each).
 *
 * It only ever reads: nothing here creates, changes or follows anything
 * the `Deno` calls would not (the path is opened as `Deno.openSync` would,
 * non-blocking so that a FIFO met instead of a file cannot hang the
 * client). Any failure is the caller's cue to take the `Deno` path, which
 * reports it in its usual words.
 *
 * @module
 */

import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  int64At,
  type LinuxLayout,
  linuxLayout,
  millisecondsAt,
  O_CLOEXEC,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from "../_common/linux_abi.ts";
import { cString, errnoAt, openLibrary } from "../_common/ffi.ts";
import {
  DENTS_BUFFER_BYTES,
  type FolderRecords,
  readFolderNames,
} from "../_common/dirents.ts";

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  fstatat: {
    parameters: ["i32", "buffer", "buffer", "i32"],
    result: "i32",
  },
  close: { parameters: ["i32"], result: "i32" },
  // glibc 2.30 and later; without it, folders are read by Deno.
  getdents64: {
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    optional: true,
  },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** What {@linkcode NativeRead.readWhole} found. */
export interface WholeRead {
  /** Bytes read into the buffer (at most its length). */
  read: number;
  /** The file's size after the read (`fstat`). */
  size: number;
  /** Its modification time then, milliseconds. */
  mtime: number;
  /** Its device (with `ino`: which file was read). */
  dev: number;
  /** Its inode. */
  ino: number;
}

/**
 * What {@linkcode NativeRead.lstat} reports: what a walk of a local tree
 * needs of `Deno.lstatSync`'s `Deno.FileInfo`.
 *
 * @example A file's status
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LocalStatus } from "./native_read.ts";
 * const status: LocalStatus = {
 *   isFile: true, isDirectory: false, isSymlink: false,
 *   size: 3, mtime: new Date(0),
 * };
 * assert(status.isFile);
 * ```
 */
export interface LocalStatus {
  /** A regular file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** A symbolic link (never followed). */
  isSymlink: boolean;
  /** Size in bytes. */
  size: number;
  /** Modification time. */
  mtime: Date | null;
  /** Device, where known: with `ino`, which folder this is. */
  dev?: number;
  /** Inode, where known. */
  ino?: number | null;
}

/** What {@linkcode NativeRead.readFolder} read. */
export interface FolderRead {
  /** The names, in the folder's order. */
  names: string[];
  /** Each name's `d_type`. */
  types: number[];
  /** Names that are not UTF-8 (left out of `names`), U+FFFD for bad bytes. */
  undecodable: string[];
  /** The device of the folder read (`fstat` of the descriptor read). */
  dev: number;
  /** Its inode. */
  ino: number;
}

/**
 * Reads small local files in few calls.
 *
 * @example Read a file whole
 * ```ts
 * import { nativeRead } from "./native_read.ts";
 * const reader = nativeRead();
 * if (reader) {
 *   const path = await Deno.makeTempFile({ prefix: "ferry_test_" });
 *   try {
 *     await Deno.writeTextFile(path, "abc");
 *     const got = reader.readWhole(path, new Uint8Array(3));
 *     console.log(got?.read, got?.size);
 *   } finally {
 *     await Deno.remove(path);
 *   }
 * }
 * ```
 */
export interface NativeRead {
  /**
   * Opens `path`, reads up to `into.length` bytes into `into` from its
   * start, `fstat`s and closes it.
   *
   * @param path The local file.
   * @param into Where its bytes go.
   * @returns What was read, or `undefined` if anything failed or it is not
   * a regular file (the caller takes the usual path, which says why).
   */
  readWhole(path: string, into: Uint8Array): WholeRead | undefined;

  /**
   * {@linkcode readWhole} of `name` in the folder open as `fd` (`openat`
   * with `O_NOFOLLOW | O_NONBLOCK`: a link or a FIFO put there is never
   * followed or waited on).
   *
   * @param fd A folder descriptor ({@linkcode openFolder}).
   * @param name A name in it.
   * @param into Where its bytes go.
   * @returns What was read, or `undefined` (as {@linkcode readWhole}).
   */
  readWholeAt(
    fd: number,
    name: string,
    into: Uint8Array,
  ): WholeRead | undefined;

  /**
   * Opens the regular file `name` in the folder open as `fd` (`openat`
   * with `O_NOFOLLOW | O_NONBLOCK`, then `fstat`).
   *
   * @param fd A folder descriptor, or `AT_FDCWD` for a path.
   * @param name A name in it.
   * @param follow Whether `name` may be a link (a path a user names).
   * @returns The file's descriptor (close it with {@linkcode close}), or
   * `undefined` if it cannot be opened or is not a regular file.
   */
  openFileAt(fd: number, name: string, follow: boolean): number | undefined;

  /**
   * Reads from the file open as `fd` at `position` (`pread`).
   *
   * @param fd A descriptor from {@linkcode openFileAt}.
   * @param into Where the bytes go.
   * @param position The offset in the file.
   * @returns Bytes read (0 at the end), or -1 on an error.
   */
  readFd(fd: number, into: Uint8Array, position: number): number;

  /**
   * The status of the file open as `fd` (`fstat`).
   *
   * @param fd A descriptor.
   * @returns Its status, or `undefined` if `fstat` failed.
   */
  statFd(fd: number): LocalStatus | undefined;

  /** Whether {@linkcode readFolderAt} can read folders (`getdents64`). */
  readonly readsFolders: boolean;

  /**
   * The names in the folder open as `fd` (as {@linkcode readFolder}).
   *
   * @param fd A folder descriptor ({@linkcode openFolder}).
   * @returns Names and types, or `undefined` if anything failed.
   */
  readFolderAt(
    fd: number,
  ): Omit<FolderRead, "dev" | "ino"> | undefined;

  /**
   * Opens the folder `name` in the folder open as `parent` (`openat` with
   * `O_DIRECTORY | O_NOFOLLOW`: a link is refused).
   *
   * @param parent A folder descriptor.
   * @param name A name in it.
   * @returns As {@linkcode openFolder}.
   */
  openFolderAt(
    parent: number,
    name: string,
  ): { fd: number; dev: number; ino: number } | undefined;

  /**
   * The status of `path` itself (`fstatat(AT_SYMLINK_NOFOLLOW)`, a link
   * is not followed): one libc call, where `Deno.lstatSync` builds a whole
   * `Deno.FileInfo`.
   *
   * @param path The entry.
   * @returns Its status, or `undefined` if it cannot be read (the caller
   * asks `Deno.lstatSync`, which says why).
   */
  lstat(path: string): LocalStatus | undefined;

  /**
   * The names in the folder `path` (`open` with `O_DIRECTORY`, then
   * `getdents64` on it until it is read, `fstat`, `close`), with each
   * one's `d_type` (`DT_REG` from `_common/dirents.ts` for a regular file,
   * 0 when the file system does not say), and which folder was read (its
   * device and inode): where `Deno.readDirSync` makes an object per entry.
   *
   * @param path The folder.
   * @param follow Whether `path` may be a link to a folder (the top folder
   * a user names); else a link is refused (`O_NOFOLLOW`).
   * @returns Names, types and identity, or `undefined` if anything failed
   * (the caller asks `Deno.readDirSync`, which says why).
   */
  readFolder(path: string, follow: boolean): FolderRead | undefined;

  /**
   * Opens the folder `path` to look names up in it ({@linkcode lstatAt}):
   * `O_DIRECTORY`, and `O_NOFOLLOW` unless `follow`.
   *
   * @param path The folder.
   * @param follow Whether `path` may be a link to a folder.
   * @returns The descriptor and the folder's device and inode, or
   * `undefined` if it cannot be opened as asked.
   */
  openFolder(
    path: string,
    follow: boolean,
  ): { fd: number; dev: number; ino: number } | undefined;

  /**
   * {@linkcode lstat} of `name` in the folder open as `fd`.
   *
   * @param fd A descriptor from {@linkcode openFolder}.
   * @param name A name in it.
   * @returns Its status, or `undefined`.
   */
  lstatAt(fd: number, name: string): LocalStatus | undefined;

  /**
   * Closes a descriptor from {@linkcode openFolder}.
   *
   * @param fd The descriptor.
   */
  close(fd: number): void;
}

class Loaded implements NativeRead {
  #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  #layout: LinuxLayout;
  #stat: Uint8Array<ArrayBuffer>;
  #view: DataView;
  #name = new Uint8Array(4097);
  #encoder = new TextEncoder();
  #empty = new Uint8Array(1);
  /** Where {@linkcode NativeRead.readFolder} reads folder records. */
  #dents: FolderRecords | undefined;

  constructor(
    lib: Deno.DynamicLibrary<typeof SYMBOLS>,
    layout: LinuxLayout,
  ) {
    this.#lib = lib;
    this.#layout = layout;
    this.#stat = new Uint8Array(layout.statBytes);
    this.#view = new DataView(this.#stat.buffer);
  }

  readWhole(path: string, into: Uint8Array): WholeRead | undefined {
    return this.#readWhole(AT_FDCWD, path, into, 0);
  }

  readWholeAt(
    fd: number,
    name: string,
    into: Uint8Array,
  ): WholeRead | undefined {
    return this.#readWhole(fd, name, into, this.#layout.O_NOFOLLOW);
  }

  openFileAt(
    folder: number,
    path: string,
    follow: boolean,
  ): number | undefined {
    const symbols = this.#lib.symbols;
    const fd = this.#openAt(
      folder,
      path,
      follow ? 0 : this.#layout.O_NOFOLLOW,
    );
    if (fd < 0) return undefined;
    if (
      symbols.fstatat(fd, this.#empty, this.#stat, AT_EMPTY_PATH) < 0 ||
      (this.#view.getUint32(this.#layout.mode, true) & S_IFMT) !== S_IFREG
    ) {
      symbols.close(fd);
      return undefined;
    }
    return fd;
  }

  readFd(fd: number, into: Uint8Array, position: number): number {
    return Number(
      this.#lib.symbols.pread(
        fd,
        into as Uint8Array<ArrayBuffer>,
        BigInt(into.length),
        BigInt(position),
      ),
    );
  }

  statFd(fd: number): LocalStatus | undefined {
    return this.lstatAt(fd, "", AT_EMPTY_PATH);
  }

  /** `openat` read-only, non-blocking, with `flags`; -1 if it failed. */
  #openAt(folder: number, path: string, flags: number): number {
    const name = this.#cString(path);
    if (name === undefined) return -1;
    return this.#lib.symbols.openat(
      folder,
      name,
      O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | flags,
      0,
    );
  }

  get readsFolders(): boolean {
    return this.#lib.symbols.getdents64 !== null;
  }

  #readWhole(
    folder: number,
    path: string,
    into: Uint8Array,
    flags: number,
  ): WholeRead | undefined {
    const symbols = this.#lib.symbols;
    const fd = this.#openAt(folder, path, flags);
    if (fd < 0) return undefined;
    try {
      let read = 0;
      while (read < into.length) {
        const rest = (read === 0 ? into : into.subarray(read)) as Uint8Array<
          ArrayBuffer
        >;
        const n = Number(symbols.read(fd, rest, BigInt(rest.length)));
        if (n < 0) return undefined;
        if (n === 0) break;
        read += n;
      }
      if (symbols.fstatat(fd, this.#empty, this.#stat, AT_EMPTY_PATH) < 0) {
        return undefined;
      }
      const layout = this.#layout;
      const view = this.#view;
      if ((view.getUint32(layout.mode, true) & S_IFMT) !== S_IFREG) {
        return undefined;
      }
      return {
        read,
        size: int64At(view, layout.size, true),
        mtime: millisecondsAt(view, layout.mtimeSec),
        dev: int64At(view, 0, true),
        ino: int64At(view, layout.ino, true),
      };
    } finally {
      symbols.close(fd);
    }
  }

  lstat(path: string): LocalStatus | undefined {
    return this.lstatAt(AT_FDCWD, path);
  }

  openFolder(
    path: string,
    follow: boolean,
  ): { fd: number; dev: number; ino: number } | undefined {
    const symbols = this.#lib.symbols;
    const name = this.#cString(path);
    if (name === undefined) return undefined;
    const layout = this.#layout;
    const fd = symbols.open(
      name,
      O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | layout.O_DIRECTORY |
        (follow ? 0 : layout.O_NOFOLLOW),
      0,
    );
    return fd < 0 ? undefined : this.#identify(fd);
  }

  openFolderAt(
    parent: number,
    path: string,
  ): { fd: number; dev: number; ino: number } | undefined {
    const symbols = this.#lib.symbols;
    const name = this.#cString(path);
    if (name === undefined) return undefined;
    const layout = this.#layout;
    const fd = symbols.openat(
      parent,
      name,
      O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | layout.O_DIRECTORY |
        layout.O_NOFOLLOW,
      0,
    );
    return fd < 0 ? undefined : this.#identify(fd);
  }

  /** `fd` with its device and inode; closed if `fstat` fails. */
  #identify(fd: number): { fd: number; dev: number; ino: number } | undefined {
    if (
      this.#lib.symbols.fstatat(fd, this.#empty, this.#stat, AT_EMPTY_PATH) < 0
    ) {
      this.#lib.symbols.close(fd);
      return undefined;
    }
    const view = this.#view;
    return {
      fd,
      dev: int64At(view, 0, true),
      ino: int64At(view, this.#layout.ino, true),
    };
  }

  close(fd: number): void {
    this.#lib.symbols.close(fd);
  }

  lstatAt(
    fd: number,
    path: string,
    flags = AT_SYMLINK_NOFOLLOW,
  ): LocalStatus | undefined {
    const name = this.#cString(path);
    if (name === undefined) return undefined;
    const result = this.#lib.symbols.fstatat(fd, name, this.#stat, flags);
    if (result < 0) return undefined;
    const layout = this.#layout;
    const view = this.#view;
    const type = view.getUint32(layout.mode, true) & S_IFMT;
    return {
      isFile: type === S_IFREG,
      isDirectory: type === S_IFDIR,
      isSymlink: type === S_IFLNK,
      size: int64At(view, layout.size, true),
      mtime: new Date(millisecondsAt(view, layout.mtimeSec)),
      dev: int64At(view, 0, true),
      ino: int64At(view, layout.ino, true),
    };
  }

  readFolder(path: string, follow: boolean): FolderRead | undefined {
    const symbols = this.#lib.symbols;
    const getdents = symbols.getdents64;
    if (getdents === null) return undefined;
    const open = this.openFolder(path, follow);
    if (open === undefined) return undefined;
    try {
      const read = this.readFolderAt(open.fd);
      return read && { ...read, dev: open.dev, ino: open.ino };
    } finally {
      symbols.close(open.fd);
    }
  }

  readFolderAt(fd: number): Omit<FolderRead, "dev" | "ino"> | undefined {
    const symbols = this.#lib.symbols;
    const getdents = symbols.getdents64;
    if (getdents === null) return undefined;
    const records = this.#dents ??= {
      getdents64: getdents,
      errno: () => errnoAt(symbols.__errno_location()),
      buffer: new Uint8Array(DENTS_BUFFER_BYTES),
    };
    const names: string[] = [];
    const types: number[] = [];
    const undecodable: string[] = [];
    if (readFolderNames(records, fd, names, types, undecodable) !== 0) {
      return undefined;
    }
    return { names, types, undecodable };
  }

  /** `path` as a C string, or `undefined` if it holds a NUL. */
  #cString(path: string): Uint8Array<ArrayBuffer> | undefined {
    return cString(path, this.#name, this.#encoder);
  }
}

let loaded: Loaded | null | undefined;

/**
 * The reader when `--allow-ffi` is granted on Linux (x86-64, arm64) and
 * libc loads, else `undefined`. Loaded once.
 *
 * @returns The reader, or `undefined`.
 *
 * @example Ask whether it is there
 * ```ts
 * import { nativeRead } from "./native_read.ts";
 * console.log(nativeRead() ? "libc" : "Deno calls");
 * ```
 */
export function nativeRead(): NativeRead | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  const layout = linuxLayout();
  if (layout === undefined) return undefined;
  // libc does not ask Deno: only a client that may read anything uses it.
  const lib = openLibrary(["libc.so.6"], SYMBOLS, ["ffi", "read"]);
  if (lib === undefined) return undefined;
  loaded = new Loaded(lib, layout);
  return loaded;
}
