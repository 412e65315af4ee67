/**
 * Saving the files of a tree download with libc through `Deno.dlopen`,
 * when the client was granted `--allow-ffi` and unrestricted
 * `--allow-read` and `--allow-write` (libc does not ask Deno's
 * permissions) on Linux (x86-64 or arm64). A tree of thousands of small
 * files creates each one this way: `openat` of `NAME.part` relative to its
 * folder held open, `write`, `futimens`, `close`, `renameat` to `NAME`.
 * The same five calls as `Deno.openSync`, `writeSync`, `utimeSync`,
 * `close` and `renameSync`, without a resource, a permission check and a
 * path resolved from the working folder each (10,000 files of 1 KiB in
 * 100 folders on tmpfs: 250 ms against 420 ms).
 *
 * The rules of the `Deno` path hold: a file appears whole or not at all
 * (written as `NAME.part`, renamed into place), the part is created
 * exclusively and never through a symbolic link (`O_EXCL | O_NOFOLLOW`),
 * and every folder under the destination is opened from the one above it
 * without following a link (`O_NOFOLLOW | O_DIRECTORY`), so a folder
 * swapped for a link after `SafeDest` checked it is refused, never
 * followed. Any failure to create the part is the caller's cue to take the
 * `Deno` path, which reports it in its usual words.
 *
 * @module
 */

import {
  EINTR,
  EINVAL,
  ELOOP,
  ENOTDIR,
  linuxLayout,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_WRONLY,
  timespecPair,
} from "../_common/linux_abi.ts";
import { cString, errnoAt, openLibrary } from "../_common/ffi.ts";

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  renameat: {
    parameters: ["i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** Folders held open at most by one {@linkcode HeldFolders} (more while in use). */
const HELD_FOLDERS = 64;

/**
 * A part file created by {@linkcode NativeWrite.createPart}: written,
 * then {@linkcode NativeWrite.commitPart} or
 * {@linkcode NativeWrite.dropPart}.
 */
export interface NativePart {
  /** The part's descriptor; -1 once closed. */
  fd: number;
  /** The folder it is in (held by the caller until it is done). */
  folder: number;
  /** The file's name in that folder. */
  name: string;
}

/**
 * Creates files in folders held open, in few calls.
 *
 * @example Save a file in a temporary folder
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeWrite } from "./native_write.ts";
 * const native = nativeWrite();
 * if (native) {
 *   const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
 *   try {
 *     const folder = native.openFolder(dir);
 *     const part = native.createPart(folder, "a.txt");
 *     assert(part !== undefined);
 *     native.writeAll(part, new TextEncoder().encode("hi"));
 *     native.commitPart(part, 0);
 *     native.closeFolder(folder);
 *     assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "hi");
 *   } finally {
 *     await Deno.remove(dir, { recursive: true });
 *   }
 * }
 * ```
 */
export interface NativeWrite {
  /**
   * Opens a folder by path, following a link (the destination is the
   * user's choice).
   *
   * @param path The folder.
   * @returns Its descriptor, or minus the `errno`.
   */
  openFolder(path: string): number;
  /**
   * Opens the folder `name` of the folder `parent` without following a
   * link.
   *
   * @param parent A folder held open.
   * @param name One segment.
   * @returns Its descriptor, or minus the `errno` (`ELOOP` for a link,
   * `ENOTDIR` for a file, `ENOENT` if missing).
   */
  openFolderAt(parent: number, name: string): number;
  /**
   * Closes a folder.
   *
   * @param fd Its descriptor.
   */
  closeFolder(fd: number): void;
  /**
   * Creates `name.part` in `folder`, exclusively and not through a link.
   *
   * @param folder A folder held open.
   * @param name The file's name.
   * @returns The part, or `undefined` if it could not be created (the
   * caller takes the `Deno` path, which says why).
   */
  createPart(folder: number, name: string): NativePart | undefined;
  /**
   * Writes all of `bytes` to the part.
   *
   * @param part The part.
   * @param bytes The bytes.
   * @throws {Error} If the kernel refuses (`errno N`).
   */
  writeAll(part: NativePart, bytes: Uint8Array): void;
  /**
   * Sets the part's times to `mtime`, closes it and renames it to its name
   * (replacing a file there, as `Deno.renameSync` does).
   *
   * @param part The part.
   * @param mtime Milliseconds since the epoch.
   * @throws {Error} If a call fails (`errno N`); the part is removed.
   */
  commitPart(part: NativePart, mtime: number | undefined): void;
  /**
   * Closes the part, and removes it unless `keep`.
   *
   * @param part The part.
   * @param keep Keep `name.part`.
   */
  dropPart(part: NativePart, keep?: boolean): void;
}

class Loaded implements NativeWrite {
  #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  #noFollow: number;
  #directory: number;
  #name = new Uint8Array(4097);
  #other = new Uint8Array(4097);
  #encoder = new TextEncoder();
  #times = new Int32Array(8);

  constructor(
    lib: Deno.DynamicLibrary<typeof SYMBOLS>,
    flags: { noFollow: number; directory: number },
  ) {
    this.#lib = lib;
    this.#noFollow = flags.noFollow;
    this.#directory = flags.directory;
  }

  openFolder(path: string): number {
    const name = cString(path, this.#name, this.#encoder);
    if (name === undefined) return -EINVAL;
    const fd = this.#lib.symbols.open(
      name,
      O_RDONLY | this.#directory | O_CLOEXEC,
      0,
    );
    return fd < 0 ? -this.#errno() : fd;
  }

  openFolderAt(parent: number, name: string): number {
    const c = cString(name, this.#name, this.#encoder);
    if (c === undefined) return -EINVAL;
    const fd = this.#lib.symbols.openat(
      parent,
      c,
      O_RDONLY | this.#directory | this.#noFollow | O_CLOEXEC,
      0,
    );
    return fd < 0 ? -this.#errno() : fd;
  }

  closeFolder(fd: number): void {
    this.#lib.symbols.close(fd);
  }

  createPart(folder: number, name: string): NativePart | undefined {
    const part = cString(`${name}.part`, this.#name, this.#encoder);
    if (part === undefined) return undefined;
    const fd = this.#lib.symbols.openat(
      folder,
      part,
      O_WRONLY | O_CREAT | O_EXCL | this.#noFollow | O_CLOEXEC,
      0o666,
    );
    if (fd < 0) return undefined;
    return { fd, folder, name };
  }

  writeAll(part: NativePart, bytes: Uint8Array): void {
    const write = this.#lib.symbols.write;
    let done = 0;
    while (done < bytes.length) {
      const rest = (done === 0 ? bytes : bytes.subarray(done)) as Uint8Array<
        ArrayBuffer
      >;
      const n = Number(write(part.fd, rest, BigInt(rest.length)));
      if (n < 0) {
        const errno = this.#errno();
        if (errno === EINTR) continue;
        throw new Error(`errno ${errno}`);
      }
      done += n;
    }
  }

  commitPart(part: NativePart, mtime: number | undefined): void {
    const symbols = this.#lib.symbols;
    let failed: string | undefined;
    if (
      mtime !== undefined && symbols.futimens(part.fd, this.#timesOf(mtime)) < 0
    ) {
      failed = `futimens: errno ${this.#errno()}`;
    }
    if (symbols.close(part.fd) < 0 && failed === undefined) {
      const errno = this.#errno();
      if (errno !== EINTR) failed = `close: errno ${errno}`;
    }
    part.fd = -1;
    if (failed === undefined) {
      const from = cString(`${part.name}.part`, this.#name, this.#encoder)!;
      const to = cString(part.name, this.#other, this.#encoder)!;
      if (symbols.renameat(part.folder, from, part.folder, to) === 0) return;
      failed = `renameat: errno ${this.#errno()}`;
    }
    this.dropPart(part);
    throw new Error(failed);
  }

  dropPart(part: NativePart, keep = false): void {
    if (part.fd >= 0) this.#lib.symbols.close(part.fd);
    part.fd = -1;
    if (keep) return;
    const name = cString(`${part.name}.part`, this.#name, this.#encoder)!;
    this.#lib.symbols.unlinkat(part.folder, name, 0);
  }

  /** Access and modification time both `mtime`, as `struct timespec[2]`. */
  #timesOf(mtime: number): Int32Array<ArrayBuffer> {
    return timespecPair(this.#times, mtime, false);
  }

  #errno(): number {
    return errnoAt(this.#lib.symbols.__errno_location());
  }
}

let loaded: Loaded | null | undefined;

/**
 * The writer when `--allow-ffi`, `--allow-read` and `--allow-write` are
 * granted on Linux (x86-64, arm64) and libc loads, else `undefined`.
 * Loaded once.
 *
 * @returns The writer, or `undefined`.
 *
 * @example Ask whether it is there
 * ```ts
 * import { nativeWrite } from "./native_write.ts";
 * console.log(nativeWrite() ? "libc" : "Deno calls");
 * ```
 */
export function nativeWrite(): NativeWrite | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  const layout = linuxLayout();
  if (layout === undefined) return undefined;
  // libc does not ask Deno: only a client that may write anywhere uses it.
  const lib = openLibrary(["libc.so.6"], SYMBOLS, ["ffi", "read", "write"]);
  if (lib === undefined) return undefined;
  loaded = new Loaded(lib, {
    noFollow: layout.O_NOFOLLOW,
    directory: layout.O_DIRECTORY,
  });
  return loaded;
}

/**
 * The folders of a tree download held open, by their segments under the
 * destination: each opened from the one above without following a link,
 * at most {@linkcode HELD_FOLDERS} kept while not in use.
 *
 * @example Hold a folder while saving in it
 * ```ts
 * import assert from "node:assert/strict";
 * import { HeldFolders, nativeWrite } from "./native_write.ts";
 * const native = nativeWrite();
 * if (native) {
 *   const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
 *   const folders = new HeldFolders(native, dir);
 *   try {
 *     await Deno.mkdir(`${dir}/sub`);
 *     assert(folders.acquire(["sub"]) >= 0);
 *     folders.release(["sub"]);
 *   } finally {
 *     folders.close();
 *     await Deno.remove(dir, { recursive: true });
 *   }
 * }
 * ```
 */
export class HeldFolders {
  #native: NativeWrite;
  #root: string;
  #held = new Map<string, { fd: number; users: number }>();

  /**
   * @param native The libc binding.
   * @param root The destination folder (may be a link: the user's choice).
   */
  constructor(native: NativeWrite, root: string) {
    this.#native = native;
    this.#root = root;
  }

  /**
   * The descriptor of the folder at `segments`, held until
   * {@linkcode HeldFolders.release}.
   *
   * @param segments Checked segments under the destination.
   * @param key The segments joined with `/`, if the caller has them.
   * @returns The descriptor, or minus the `errno` of the first folder on
   * the way that could not be opened (`ELOOP`: a link).
   */
  acquire(
    segments: readonly string[],
    key: string = segments.join("/"),
  ): number {
    return this.#acquire(key, segments);
  }

  /**
   * Lets the folder at `segments` be closed.
   *
   * @param segments As given to {@linkcode HeldFolders.acquire}.
   * @param key As given to {@linkcode HeldFolders.acquire}.
   */
  release(
    segments: readonly string[],
    key: string = segments.join("/"),
  ): void {
    this.#releaseKey(key);
  }

  /** Closes every folder held. */
  close(): void {
    for (const { fd } of this.#held.values()) this.#native.closeFolder(fd);
    this.#held.clear();
  }

  #acquire(key: string, segments: readonly string[]): number {
    const held = this.#held.get(key);
    if (held !== undefined) {
      held.users++;
      return held.fd;
    }
    let fd: number;
    if (segments.length === 0) fd = this.#native.openFolder(this.#root);
    else {
      const parentSegments = segments.slice(0, -1);
      const parentKey = parentSegments.join("/");
      const parent = this.#acquire(parentKey, parentSegments);
      if (parent < 0) return parent;
      fd = this.#native.openFolderAt(parent, segments[segments.length - 1]);
      this.#releaseKey(parentKey);
    }
    if (fd < 0) return fd;
    this.#held.set(key, { fd, users: 1 });
    return fd;
  }

  #releaseKey(key: string): void {
    const held = this.#held.get(key);
    if (held === undefined) return;
    held.users--;
    if (this.#held.size <= HELD_FOLDERS) return;
    // Oldest first; folders in use stay.
    for (const [name, entry] of this.#held) {
      if (this.#held.size <= HELD_FOLDERS) break;
      if (entry.users > 0) continue;
      this.#native.closeFolder(entry.fd);
      this.#held.delete(name);
    }
  }
}

/**
 * Whether a negative result of {@linkcode HeldFolders.acquire} means a
 * folder on the way is a symbolic link or not a folder (`ELOOP`,
 * `ENOTDIR`): refused, never taken by name.
 *
 * @param result What `acquire` returned.
 * @returns True for a link or a non-folder.
 *
 * @example A link on the way
 * ```ts
 * import assert from "node:assert/strict";
 * import { notAFolder } from "./native_write.ts";
 * assert(notAFolder(-40));
 * assert(!notAFolder(-2));
 * ```
 */
export function notAFolder(result: number): boolean {
  return result === -ELOOP || result === -ENOTDIR;
}
