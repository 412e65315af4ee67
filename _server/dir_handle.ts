/**
 * Kernel-checked containment on Linux ("strict mode"): a small binding of
 * libc's `*at` calls through `Deno.dlopen`, and {@linkcode openFolderAt},
 * which opens a folder of the served root one path segment at a time, each
 * with `openat(parent, segment, O_NOFOLLOW | O_DIRECTORY)` relative to the
 * folder opened before it. A symbolic link on the way is never followed
 * (`ELOOP`/`ENOTDIR` give `FORBIDDEN`), so a local user who swaps a folder
 * for a link out of the root cannot redirect what the server then does
 * relative to the descriptor it holds (`mkdirat`, `renameat`, `linkat`,
 * `unlinkat`, `utimensat`, `fstatat`): the kernel holds the jail, not a
 * check before or after.
 *
 * Strict mode is on when the process was granted `--allow-ffi` on Linux
 * (x86-64 or arm64) and libc loads; {@linkcode strictLibc} returns
 * `undefined` otherwise and callers keep their by-name checks.
 *
 * @module
 */

import * as nodePath from "node:path";
import { FerryError } from "../errors.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  EINTR,
  EINVAL,
  ENOENT,
  ENOSYS,
  int64At,
  type LinuxLayout,
  linuxLayout,
  millisecondsAt,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  timespecPair,
} from "../_common/linux_abi.ts";
import { errnoAt, openLibrary } from "../_common/ffi.ts";
import {
  DENTS_BUFFER_BYTES,
  type FolderRecords,
  readFolderNames,
} from "../_common/dirents.ts";
import { printable } from "../_common/wire_path.ts";

/** `AT_SYMLINK_NOFOLLOW` (from `linux_abi.ts`), for the users of this binding. */
export { AT_SYMLINK_NOFOLLOW } from "../_common/linux_abi.ts";

const AT_REMOVEDIR = 0x200;
const RENAME_NOREPLACE = 1;
/** Room for a name (and its NUL) in the reused name buffers. */
const NAME_BUFFER_BYTES = 256;

const SYMBOLS = {
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  renameat: {
    parameters: ["i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  linkat: {
    parameters: ["i32", "buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  utimensat: {
    parameters: ["i32", "buffer", "buffer", "i32"],
    result: "i32",
  },
  fstatat: {
    parameters: ["i32", "buffer", "buffer", "i32"],
    result: "i32",
  },
  close: { parameters: ["i32"], result: "i32" },
  // Bulk reads: on Deno's blocking pool (`nonblocking`), straight into the
  // caller's buffer. node:fs's `read` costs a dup, a `fcntl` and a close
  // per call and ran at 2.0 GB/s where this runs at 3.0 (1 MiB reads
  // from tmpfs, same machine, same load).
  pread: {
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // Small reads (a whole small file), on the calling thread: a hop through
  // the pool costs more than the copy.
  preadNow: {
    name: "pread",
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
  },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  // glibc 2.28 and later; without it, linkat and unlinkat do the same.
  renameat2: {
    parameters: ["i32", "buffer", "i32", "buffer", "u32"],
    result: "i32",
    optional: true,
  },
  // glibc 2.30 and later; without it, a folder's names are read by path.
  getdents64: {
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    optional: true,
  },
  // Runs on a thread of its own: it waits for the disk.
  syncfs: { parameters: ["i32"], result: "i32", nonblocking: true },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/**
 * What {@linkcode Libc.statAt} reports of a directory entry.
 *
 * @example Read a status
 * ```ts
 * import type { EntryStatus } from "./dir_handle.ts";
 * const status: EntryStatus = {
 *   dev: 1, ino: 2, mode: 0o100644, nlink: 1, size: 0, mtime: 0, ctime: 0,
 *   isFile: true, isDirectory: false, isSymlink: false,
 * };
 * console.log(status.size);
 * ```
 */
export interface EntryStatus {
  /** Device. */
  dev: number;
  /** Inode. */
  ino: number;
  /** Type and permission bits. */
  mode: number;
  /** Hard links. */
  nlink: number;
  /** Size in bytes. */
  size: number;
  /** Modification time, milliseconds since the epoch. */
  mtime: number;
  /** Status change time, milliseconds since the epoch. */
  ctime: number;
  /** A regular file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** A symbolic link (only seen with {@linkcode AT_SYMLINK_NOFOLLOW}). */
  isSymlink: boolean;
}

/**
 * The libc calls strict mode uses. Every method throws the `Deno.errors`
 * class of the call's `errno` (`NotFound`, `AlreadyExists`,
 * `NotADirectory`, `FilesystemLoop`, `PermissionDenied`, ...) with a
 * `code` such as `"ELOOP"`.
 *
 * @example Make a folder relative to another
 * ```ts
 * import assert from "node:assert/strict";
 * import { strictLibc } from "./dir_handle.ts";
 * const libc = strictLibc();
 * if (libc) {
 *   const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
 *   const fd = libc.openFolder(dir);
 *   try {
 *     libc.mkdirAt(fd, "a");
 *     assert(libc.statAt(fd, "a", 0).isDirectory);
 *   } finally {
 *     libc.close(fd);
 *     await Deno.remove(dir, { recursive: true });
 *   }
 * }
 * ```
 */
export class Libc {
  #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  #layout: LinuxLayout;
  #encoder = new TextEncoder();
  #statBuffer: Uint8Array<ArrayBuffer> | undefined;
  /** Where {@linkcode Libc.namesIn} reads folder records. */
  #dents: FolderRecords | undefined;
  #names = [
    new Uint8Array(NAME_BUFFER_BYTES),
    new Uint8Array(NAME_BUFFER_BYTES),
  ] as const;

  /**
   * Wraps an opened libc.
   *
   * @param lib The library, opened with {@linkcode SYMBOLS}.
   * @param layout This architecture's constants.
   */
  constructor(lib: Deno.DynamicLibrary<typeof SYMBOLS>, layout: LinuxLayout) {
    this.#lib = lib;
    this.#layout = layout;
  }

  /**
   * Opens a folder by absolute path (the root, which the operator chose).
   *
   * @param path The folder.
   * @returns Its descriptor.
   */
  openFolder(path: string): number {
    return this.#check(
      this.#lib.symbols.openat(
        AT_FDCWD,
        this.#name(path),
        O_RDONLY | O_CLOEXEC | this.#layout.O_DIRECTORY,
        0,
      ),
      "openat",
    );
  }

  /**
   * Opens the folder `name` inside `dirFd`, refusing a link.
   *
   * @param dirFd The folder it is in.
   * @param name One segment.
   * @returns Its descriptor.
   */
  openFolderAt(dirFd: number, name: string): number {
    return this.#check(
      this.#lib.symbols.openat(
        dirFd,
        this.#name(name),
        O_RDONLY | O_CLOEXEC | this.#layout.O_DIRECTORY |
          this.#layout.O_NOFOLLOW,
        0,
      ),
      "openat",
    );
  }

  /**
   * Opens the file `name` inside `dirFd` for reading, refusing a link
   * (`O_NOFOLLOW`) and never blocking (`O_NONBLOCK | O_NOCTTY`: a FIFO or
   * a device swapped in opens at once and takes over nothing; the caller
   * refuses what is not a regular file).
   *
   * @param dirFd The folder.
   * @param name The file's name.
   * @returns Its descriptor, read-only; close it with {@linkcode Libc.close}.
   */
  openFileAt(dirFd: number, name: string): number {
    return this.#check(
      this.#lib.symbols.openat(
        dirFd,
        this.#name(name),
        O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | this.#layout.O_NOFOLLOW,
        0,
      ),
      "openat",
    );
  }

  /**
   * The kernel's name of the descriptor `fd` (`readlink` of
   * `/proc/self/fd/N`), as bytes, into a reused buffer.
   *
   * @param fd The descriptor.
   * @param into Where the name goes.
   * @returns Its length, or -1 if it cannot be read or does not fit.
   */
  kernelNameOf(fd: number, into: Uint8Array<ArrayBuffer>): number {
    const path = this.#procPath;
    // The number's decimal digits, most significant first.
    let digits = 1;
    for (let rest = fd; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let at = PROC_FD.length + digits;
    path[at] = 0;
    for (let rest = fd; at > PROC_FD.length; rest = Math.floor(rest / 10)) {
      path[--at] = 0x30 + rest % 10;
    }
    const n = Number(
      this.#lib.symbols.readlink(path, into, BigInt(into.length)),
    );
    return n < 0 || n >= into.length ? -1 : n;
  }

  /** `/proc/self/fd/` and room for a number and NUL. */
  #procPath: Uint8Array<ArrayBuffer> = (() => {
    const path = new Uint8Array(PROC_FD.length + 16);
    path.set(PROC_FD);
    return path;
  })();

  /** Bytes of a `struct stat`, the size of {@linkcode Libc.statFd}'s buffer. */
  get statBytes(): number {
    return this.#layout.statBytes;
  }

  /**
   * `fstat` of an open descriptor into a reused buffer.
   *
   * @param fd The descriptor.
   * @param into At least {@linkcode Libc.statBytes} bytes; holds the raw
   * status after the call (for {@linkcode Libc.sameVersion}).
   * @returns Its status.
   */
  statFd(fd: number, into: Uint8Array<ArrayBuffer>): EntryStatus {
    this.#check(
      this.#lib.symbols.fstatat(fd, EMPTY_NAME, into, AT_EMPTY_PATH),
      "fstat",
    );
    return this.#status(into);
  }

  /**
   * {@linkcode Libc.statFd} without decoding: only the raw status in
   * `into` (for {@linkcode Libc.sameVersion}).
   *
   * @param fd The descriptor.
   * @param into At least {@linkcode Libc.statBytes} bytes.
   */
  statFdRaw(fd: number, into: Uint8Array<ArrayBuffer>): void {
    this.#check(
      this.#lib.symbols.fstatat(fd, EMPTY_NAME, into, AT_EMPTY_PATH),
      "fstat",
    );
  }

  /**
   * Whether two raw statuses from {@linkcode Libc.statFd} describe the same
   * version of a file: device, inode, size, and modification and change
   * times to the nanosecond.
   *
   * @param a One status buffer.
   * @param b The other.
   * @returns Whether nothing tells them apart.
   */
  sameVersion(a: Uint8Array, b: Uint8Array): boolean {
    const layout = this.#layout;
    return sameRange(a, b, 0, 8) && sameRange(a, b, layout.ino, 8) &&
      sameRange(a, b, layout.size, 8) &&
      sameRange(a, b, layout.mtimeSec, 32); // mtime and ctime, with nsec
  }

  /**
   * `pread`: reads into `into` from `position`.
   *
   * @param fd The descriptor.
   * @param into Where the bytes go.
   * @param position Offset in the file.
   * @returns The bytes read (0 at the end).
   */
  readAt(fd: number, into: Uint8Array, position: number): number {
    const n = this.#lib.symbols.preadNow(
      fd,
      into as Uint8Array<ArrayBuffer>,
      BigInt(into.length),
      BigInt(position),
    );
    return this.#check(Number(n), "pread");
  }

  /**
   * Creates a new file `name` inside `dirFd` (`O_CREAT | O_EXCL |
   * O_NOFOLLOW`, so no existing name, a link included, is reused).
   *
   * @param dirFd The folder.
   * @param name The new file's name.
   * @returns Its descriptor, open for reading and writing.
   */
  createAt(dirFd: number, name: string): number {
    return this.#check(
      this.#lib.symbols.openat(
        dirFd,
        this.#name(name),
        O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC |
          this.#layout.O_NOFOLLOW,
        0o666,
      ),
      "openat",
    );
  }

  /**
   * `mkdirat`.
   *
   * @param dirFd The folder.
   * @param name The new folder's name.
   */
  mkdirAt(dirFd: number, name: string): void {
    this.#check(
      this.#lib.symbols.mkdirat(dirFd, this.#name(name), 0o777),
      "mkdirat",
    );
  }

  /**
   * `renameat` within or between folders held open.
   *
   * @param fromFd The source folder.
   * @param from The source name.
   * @param toFd The target folder.
   * @param to The target name.
   */
  renameAt(fromFd: number, from: string, toFd: number, to: string): void {
    this.#check(
      this.#lib.symbols.renameat(
        fromFd,
        this.#name(from),
        toFd,
        this.#name(to, 1),
      ),
      "renameat",
    );
  }

  /**
   * `linkat` (never following a link at `from`).
   *
   * @param fromFd The source folder.
   * @param from The source name.
   * @param toFd The target folder.
   * @param to The new name, which must not exist.
   */
  linkAt(fromFd: number, from: string, toFd: number, to: string): void {
    this.#check(
      this.#lib.symbols.linkat(
        fromFd,
        this.#name(from),
        toFd,
        this.#name(to, 1),
        0,
      ),
      "linkat",
    );
  }

  /**
   * `unlinkat` of a file (not a folder).
   *
   * @param dirFd The folder.
   * @param name The name to remove.
   */
  unlinkAt(dirFd: number, name: string): void {
    this.#check(
      this.#lib.symbols.unlinkat(dirFd, this.#name(name), 0),
      "unlinkat",
    );
  }

  /**
   * `unlinkat(AT_REMOVEDIR)`: removes the empty folder `name`.
   *
   * @param dirFd The folder it is in.
   * @param name The folder to remove.
   */
  removeFolderAt(dirFd: number, name: string): void {
    this.#check(
      this.#lib.symbols.unlinkat(dirFd, this.#name(name), AT_REMOVEDIR),
      "unlinkat",
    );
  }

  /**
   * `renameat2(RENAME_NOREPLACE)` within one folder: moves `from` to `to`
   * only if no `to` exists (else `AlreadyExists`), in one atomic step.
   * Where the kernel, file system or libc lacks it, `linkat` then
   * `unlinkat` do the same in two.
   *
   * @param dirFd The folder.
   * @param from The name to move.
   * @param to The new name, which must not exist.
   */
  renameNoReplaceAt(dirFd: number, from: string, to: string): void {
    const renameat2 = this.#lib.symbols.renameat2;
    if (renameat2 !== null) {
      const result = renameat2(
        dirFd,
        this.#name(from),
        dirFd,
        this.#name(to, 1),
        RENAME_NOREPLACE,
      );
      if (result >= 0) return;
      const errno = this.#errno();
      // EINVAL: not supported by this file system; ENOSYS: nor the kernel.
      if (errno !== EINVAL && errno !== ENOSYS) {
        throw errnoError(errno, "renameat2");
      }
    }
    this.linkAt(dirFd, from, dirFd, to);
    this.unlinkAt(dirFd, from);
  }

  /**
   * Writes all of `bytes` to the descriptor `fd` (one `write`, or more if
   * the kernel takes less).
   *
   * @param fd An open file.
   * @param bytes The bytes.
   */
  writeAll(fd: number, bytes: Uint8Array<ArrayBuffer>): void {
    let at = 0;
    while (at < bytes.length) {
      const rest = at === 0 ? bytes : bytes.subarray(at);
      const n = Number(
        this.#lib.symbols.write(fd, rest, BigInt(rest.length)),
      );
      if (n >= 0) {
        at += n;
        continue;
      }
      const errno = this.#errno();
      if (errno !== EINTR) throw errnoError(errno, "write");
    }
  }

  /**
   * Sets the modification time of the open file `fd`; the access time
   * becomes now.
   *
   * @param fd An open file.
   * @param mtime Milliseconds since the epoch.
   */
  setMtime(fd: number, mtime: number): void {
    this.#check(this.#lib.symbols.futimens(fd, timesOf(mtime)), "futimens");
  }

  /**
   * `syncfs`: writes every file of the file system that holds `fd` to
   * disk, and waits for it (on a thread of its own: the event loop goes
   * on).
   *
   * @param fd Any descriptor on that file system.
   * @returns Once the data is on disk.
   * @throws {Error} If the kernel reports a write error.
   */
  async syncFileSystem(fd: number): Promise<void> {
    const result = await this.#lib.symbols.syncfs(fd);
    // errno belongs to the thread that made the call: no detail here.
    if (result < 0) {
      throw Object.assign(new Error("syncfs failed"), { code: "EIO" });
    }
  }

  /**
   * Sets the modification time of `name` (never through a link); the
   * access time becomes now.
   *
   * @param dirFd The folder.
   * @param name The entry.
   * @param mtime Milliseconds since the epoch.
   */
  setMtimeAt(dirFd: number, name: string, mtime: number): void {
    this.#check(
      this.#lib.symbols.utimensat(
        dirFd,
        this.#name(name),
        timesOf(mtime),
        AT_SYMLINK_NOFOLLOW,
      ),
      "utimensat",
    );
  }

  /**
   * `fstatat`.
   *
   * @param dirFd The folder.
   * @param name The entry.
   * @param flags `0`, or {@linkcode AT_SYMLINK_NOFOLLOW} to see a link.
   * @returns Its status.
   */
  statAt(dirFd: number, name: string, flags: number): EntryStatus {
    // Read at once into the one buffer (a listing stats every name).
    const buffer = this.#statBuffer ??= new Uint8Array(this.#layout.statBytes);
    this.#check(
      this.#lib.symbols.fstatat(dirFd, this.#name(name), buffer, flags),
      "fstatat",
    );
    return this.#status(buffer);
  }

  #status(buffer: Uint8Array<ArrayBuffer>): EntryStatus {
    const layout = this.#layout;
    const view = new DataView(buffer.buffer, buffer.byteOffset);
    const mode = view.getUint32(layout.mode, true);
    const type = mode & S_IFMT;
    return {
      dev: int64At(view, 0, false),
      ino: int64At(view, layout.ino, false),
      mode,
      nlink: layout.nlinkBytes === 8
        ? int64At(view, layout.nlink, false)
        : view.getUint32(layout.nlink, true),
      size: int64At(view, layout.size, true),
      mtime: millisecondsAt(view, layout.mtimeSec),
      ctime: millisecondsAt(view, layout.ctimeSec),
      isFile: type === S_IFREG,
      isDirectory: type === S_IFDIR,
      isSymlink: type === 0o120000,
    };
  }

  /**
   * Reads up to `buffer.length` bytes at `position` on Deno's blocking
   * thread pool, straight into `buffer`.
   *
   * @param fd An open file.
   * @param buffer Where the bytes go (not touched until the promise
   * settles).
   * @param position The file offset.
   * @returns The bytes read (0 at the end of the file), or -1 on failure:
   * the call ran on another thread, so its `errno` is not known here.
   */
  async pread(
    fd: number,
    buffer: Uint8Array<ArrayBuffer>,
    position: number,
  ): Promise<number> {
    return Number(
      await this.#lib.symbols.pread(
        fd,
        buffer,
        BigInt(buffer.length),
        BigInt(position),
      ),
    );
  }

  /**
   * `fstatat`, for a name that may well be missing: `undefined` then,
   * without the cost of an exception.
   *
   * @param dirFd The folder.
   * @param name The entry.
   * @param flags `0`, or {@linkcode AT_SYMLINK_NOFOLLOW} to see a link.
   * @returns Its status, or `undefined` if nothing has that name.
   */
  statAtIfAny(
    dirFd: number,
    name: string,
    flags: number,
  ): EntryStatus | undefined {
    const buffer = new Uint8Array(this.#layout.statBytes);
    const result = this.#lib.symbols.fstatat(
      dirFd,
      this.#name(name),
      buffer,
      flags,
    );
    if (result < 0) {
      const errno = this.#errno();
      if (errno === ENOENT) return undefined;
      throw errnoError(errno, "fstatat");
    }
    return this.#status(buffer);
  }

  /**
   * The names in the folder open as `fd`, read from that descriptor with
   * `getdents64` (`.` and `..` left out; a name that is not UTF-8, which
   * no path on the wire can name, too): a few calls for a folder of
   * thousands of names, on the calling thread.
   *
   * @param fd A folder open for reading, not read from before.
   * @returns The names, in the folder's order, or `undefined` where libc
   * lacks `getdents64` (glibc before 2.30).
   */
  namesIn(fd: number): string[] | undefined {
    const getdents = this.#lib.symbols.getdents64;
    if (getdents === null) return undefined;
    const records = this.#dents ??= {
      getdents64: getdents,
      errno: () => this.#errno(),
      buffer: new Uint8Array(DENTS_BUFFER_BYTES),
    };
    const names: string[] = [];
    const errno = readFolderNames(records, fd, names);
    if (errno !== 0) throw errnoError(errno, "getdents64");
    return names;
  }

  /**
   * Closes a descriptor (errors ignored).
   *
   * @param fd The descriptor.
   */
  close(fd: number): void {
    this.#lib.symbols.close(fd);
  }

  /**
   * `name` as a C string. A short ASCII name is written into one of two
   * reused buffers (`slot`: the second name of `renameat`/`linkat`), read
   * by the call that follows at once: no allocation and no call into the
   * runtime's encoder.
   */
  #name(name: string, slot: 0 | 1 = 0): Uint8Array<ArrayBuffer> {
    if (name.length < NAME_BUFFER_BYTES) {
      const out = this.#names[slot];
      let i = 0;
      for (; i < name.length; i++) {
        const code = name.charCodeAt(i);
        if (code >= 0x80 || code === 0) break;
        out[i] = code;
      }
      if (i === name.length) {
        out[i] = 0;
        return out;
      }
    }
    if (name.includes("\0")) throw new TypeError("NUL in a file name");
    return this.#encoder.encode(`${name}\0`) as Uint8Array<ArrayBuffer>;
  }

  #check(result: number, call: string): number {
    if (result >= 0) return result;
    throw errnoError(this.#errno(), call);
  }

  #errno(): number {
    return errnoAt(this.#lib.symbols.__errno_location());
  }
}

const PROC_FD = new TextEncoder().encode("/proc/self/fd/");

/** The empty name of `fstatat(fd, "", AT_EMPTY_PATH)`. */
const EMPTY_NAME = new Uint8Array(1);

function sameRange(
  a: Uint8Array,
  b: Uint8Array,
  start: number,
  length: number,
): boolean {
  for (let i = start; i < start + length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The reused `struct timespec[2]` of {@linkcode timesOf}, as 32-bit words. */
const TIMES = new Int32Array(8);

/**
 * The `struct timespec[2]` of `utimensat`: access now, `mtime` given.
 * Reused: the call that takes it reads it at once.
 */
function timesOf(mtime: number): Int32Array<ArrayBuffer> {
  return timespecPair(TIMES, mtime, true);
}

const ERRNO: Record<number, [string, new (message: string) => Error]> = {
  1: ["EPERM", Deno.errors.PermissionDenied],
  2: ["ENOENT", Deno.errors.NotFound],
  13: ["EACCES", Deno.errors.PermissionDenied],
  17: ["EEXIST", Deno.errors.AlreadyExists],
  20: ["ENOTDIR", Deno.errors.NotADirectory],
  21: ["EISDIR", Deno.errors.IsADirectory],
  22: ["EINVAL", Error],
  27: ["EFBIG", Error],
  28: ["ENOSPC", Error],
  39: ["ENOTEMPTY", Error],
  40: ["ELOOP", Deno.errors.FilesystemLoop],
};

function errnoError(errno: number, call: string): Error {
  const known = ERRNO[errno];
  const code = known?.[0] ?? `errno ${errno}`;
  const error = known
    ? new known[1](`${call} failed: ${code}`)
    : new Error(`${call} failed: ${code}`);
  return Object.assign(error, { code });
}

let loaded: Libc | null | undefined;

/**
 * The libc binding when strict mode is possible (Linux on x86-64 or arm64,
 * `--allow-ffi` granted, libc loads), else `undefined`. Loaded once.
 *
 * @returns The binding, or `undefined`.
 *
 * @example Ask whether strict mode is on
 * ```ts
 * import { strictLibc } from "./dir_handle.ts";
 * console.log(strictLibc() ? "strict" : "by name");
 * ```
 */
export function strictLibc(): Libc | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  const layout = linuxLayout();
  if (layout === undefined) return undefined;
  const lib = openLibrary(["libc.so.6"], SYMBOLS);
  if (lib === undefined) return undefined;
  loaded = new Libc(lib, layout);
  return loaded;
}

/**
 * Opens the folder `segments` below the root, one segment at a time with
 * `openat(O_NOFOLLOW | O_DIRECTORY)` relative to the folder before it,
 * closing each intermediate descriptor. Nothing is followed: a link on the
 * way (inside the root or not) is refused.
 *
 * @param libc The binding.
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param segments The folder's segments below the root (`[]` is the root).
 * @param wirePath The request's path, for messages.
 * @returns The folder's descriptor; the caller closes it.
 * @throws {FerryError} `FORBIDDEN` if a segment is a link or not a folder,
 * or may not be read; `NOT_FOUND` if a segment is missing.
 *
 * @example Open a sub-folder
 * ```ts
 * import assert from "node:assert/strict";
 * import { openFolderAt, strictLibc } from "./dir_handle.ts";
 * const libc = strictLibc();
 * if (libc) {
 *   const dir = await Deno.realPath(
 *     await Deno.makeTempDir({ prefix: "ferry_test_" }),
 *   );
 *   try {
 *     await Deno.mkdir(`${dir}/a/b`, { recursive: true });
 *     const fd = openFolderAt(libc, dir, ["a", "b"], "a/b");
 *     libc.close(fd);
 *     await Deno.symlink("/tmp", `${dir}/a/link`);
 *     assert.throws(() => openFolderAt(libc, dir, ["a", "link"], "a/link"));
 *   } finally {
 *     await Deno.remove(dir, { recursive: true });
 *   }
 * }
 * ```
 */
export function openFolderAt(
  libc: Libc,
  realRoot: string,
  segments: readonly string[],
  wirePath: string,
): number {
  let fd = libc.openFolder(realRoot);
  try {
    for (const segment of segments) {
      const next = libc.openFolderAt(fd, segment);
      libc.close(fd);
      fd = next;
    }
    return fd;
  } catch (error) {
    libc.close(fd);
    throw walkError(error, wirePath);
  }
}

/**
 * Maps an error of a `*at` call to a wire error naming only the wire path.
 *
 * @param error What the call threw.
 * @param wirePath The request's path.
 * @returns A {@linkcode FerryError}, or `error` itself if unexpected.
 *
 * @example Map a link on the way
 * ```ts
 * import assert from "node:assert/strict";
 * import { walkError } from "./dir_handle.ts";
 * import { FerryError } from "../errors.ts";
 * const error = walkError(new Deno.errors.FilesystemLoop("x"), "a/b");
 * assert(error instanceof FerryError && error.code === "FORBIDDEN");
 * ```
 */
export function walkError(error: unknown, wirePath: string): Error {
  if (error instanceof FerryError) return error;
  if (
    error instanceof Deno.errors.FilesystemLoop ||
    error instanceof Deno.errors.NotADirectory
  ) {
    return new FerryError(
      "FORBIDDEN",
      `Link or file on the way: ${printable(wirePath)}`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.NotFound) {
    return new FerryError(
      "NOT_FOUND",
      `Folder not found: ${printable(wirePath)}`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new FerryError(
      "FORBIDDEN",
      `Permission denied: ${printable(wirePath)}`,
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Runs `fn` with a descriptor of `folder`, a real host path inside the
 * root, opened by {@linkcode openFolderAt} along its segments below the root
 * (so a segment swapped for a link since `folder` was resolved is refused),
 * and closes it after.
 *
 * @param libc The binding.
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param folder A real host path at or below `realRoot`.
 * @param wirePath The request's path, for messages.
 * @param fn What to do relative to the folder.
 * @returns What `fn` returns.
 * @throws {FerryError} As {@linkcode openFolderAt}, and `FORBIDDEN` if
 * `folder` is not below the root.
 *
 * @example Create a file in a sub-folder
 * ```ts
 * import { inFolder, strictLibc } from "./dir_handle.ts";
 * const libc = strictLibc();
 * if (libc) {
 *   const dir = await Deno.realPath(
 *     await Deno.makeTempDir({ prefix: "ferry_test_" }),
 *   );
 *   try {
 *     await Deno.mkdir(`${dir}/a`);
 *     inFolder(libc, dir, `${dir}/a`, "a/x", (fd) => libc.close(libc.createAt(fd, "x")));
 *     await Deno.stat(`${dir}/a/x`);
 *   } finally {
 *     await Deno.remove(dir, { recursive: true });
 *   }
 * }
 * ```
 */
export function inFolder<T>(
  libc: Libc,
  realRoot: string,
  folder: string,
  wirePath: string,
  fn: (fd: number) => T,
): T {
  const relative = nodePath.relative(realRoot, folder);
  if (relative.startsWith("..") || nodePath.isAbsolute(relative)) {
    throw new FerryError(
      "FORBIDDEN",
      `Path leaves the served folder: ${printable(wirePath)}`,
    );
  }
  const segments = relative === "" ? [] : relative.split(nodePath.sep);
  const fd = openFolderAt(libc, realRoot, segments, wirePath);
  try {
    return fn(fd);
  } finally {
    libc.close(fd);
  }
}

/**
 * The status of `hostPath`, a real host path at or below the root, read
 * with `fstatat(AT_SYMLINK_NOFOLLOW)` in its folder opened from the root by
 * {@linkcode inFolder} (the root itself with `fstatat(root, ".")`), so a
 * folder swapped for a link on the way is refused, never followed.
 *
 * @param libc The binding.
 * @param realRoot The served folder, already resolved with `Deno.realPath`.
 * @param hostPath A real host path at or below `realRoot`.
 * @param wirePath The request's path, for messages.
 * @returns Its status (a link shows as a link).
 * @throws {FerryError} As {@linkcode inFolder}.
 * @throws {Deno.errors.NotFound} If the name is gone.
 *
 * @example Stat a file below the root
 * ```ts
 * import assert from "node:assert/strict";
 * import { statInside, strictLibc } from "./dir_handle.ts";
 * const libc = strictLibc();
 * if (libc) {
 *   const dir = await Deno.realPath(
 *     await Deno.makeTempDir({ prefix: "ferry_test_" }),
 *   );
 *   try {
 *     await Deno.writeTextFile(`${dir}/a.txt`, "abc");
 *     assert.equal(statInside(libc, dir, `${dir}/a.txt`, "a.txt").size, 3);
 *     assert(statInside(libc, dir, dir, "").isDirectory);
 *   } finally {
 *     await Deno.remove(dir, { recursive: true });
 *   }
 * }
 * ```
 */
export function statInside(
  libc: Libc,
  realRoot: string,
  hostPath: string,
  wirePath: string,
): EntryStatus {
  if (hostPath === realRoot) {
    return inFolder(
      libc,
      realRoot,
      realRoot,
      wirePath,
      (fd) => libc.statAt(fd, ".", AT_SYMLINK_NOFOLLOW),
    );
  }
  return inFolder(
    libc,
    realRoot,
    nodePath.dirname(hostPath),
    wirePath,
    (fd) => libc.statAt(fd, nodePath.basename(hostPath), AT_SYMLINK_NOFOLLOW),
  );
}
