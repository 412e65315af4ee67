/**
 * The local end of a download ({@linkcode Receiver}): a file received into
 * `DEST.part` and renamed into place, or a caller's writer or stream. The
 * resumable part kept with a record is another ({@linkcode ./resume.ts}).
 * Every download feeds one of them through `receiveFile` (`./receive.ts`).
 *
 * @module
 */

import type { Hasher } from "../_common/digest.ts";
import { messageOf } from "../_common/text.ts";
import { FerryError } from "../errors.ts";
import type { ByteWriter, DataMessage } from "../protocol.ts";
import { handled } from "./handled.ts";
import {
  type HeldFolders,
  type NativePart,
  type NativeWrite,
  notAFolder,
} from "./native_write.ts";

/**
 * Where a tree download saves a file with libc (`./native_write.ts`): its
 * folder among the folders held open, and its name there.
 */
export interface NativeTarget {
  /** The libc binding. */
  native: NativeWrite;
  /** The destination's folders held open. */
  folders: HeldFolders;
  /** The file's folder, as segments under the destination. */
  folder: readonly string[];
  /**
   * The folder's segments joined with `/` (one string for every file of
   * the folder: looked up without hashing a new string each time).
   */
  key: string;
  /** The file's name in it. */
  name: string;
}

/**
 * The local end of a download: a writer for the bytes, then either
 * {@linkcode Receiver.commit} (the file appears whole) or
 * {@linkcode Receiver.discard}.
 */
export interface Receiver {
  /** Where the received bytes go; local write errors become `LOCAL`. */
  readonly writer: ByteWriter;
  /**
   * Bytes of the file it already holds (a resumed download): the `GET`
   * asks for the rest.
   *
   * @default {0}
   */
  readonly offset?: number;
  /** The running digest (the session's algorithm) of those first `offset` bytes. */
  readonly hash?: Hasher;
  /** Called with the server's `DATA`, before the first byte is written. */
  start?(data: DataMessage): Promise<void>;
  /** Finishes a verified download (rename into place, set the mtime). */
  commit(mtime?: number): Promise<void>;
  /**
   * Writes a whole verified file at once and commits it, synchronously
   * (a reply already in memory, `./receive_buffered.ts`); where absent,
   * the caller writes through {@linkcode Receiver.writer} and commits.
   * On failure the caller discards.
   */
  saveWhole?(bytes: Uint8Array, mtime: number): void;
  /**
   * Abandons a download; keeps `DEST.part` only when `keepPart` is set (the
   * session broke after `DATA`: a later download may continue from it).
   */
  discard(keepPart?: boolean): Promise<void>;
}

/** Options of {@linkcode openReceiver}. */
export interface OpenReceiverOptions {
  /**
   * The caller has just found nothing at the file path (a tree download
   * lists each folder once, `SafeDest`), so the path is not looked at
   * again (a failed `lstat` costs tens of microseconds, most of it the
   * thrown error).
   *
   * @default {false}
   */
  checked?: boolean;
  /**
   * With `checked`: create the part with libc in its folder held open
   * (`./native_write.ts`); the `Deno` path is taken where that fails.
   */
  native?: NativeTarget;
}

/**
 * Prepares the local end of a download.
 *
 * A string is a file path: an existing file is refused without `overwrite`,
 * the bytes go to `DEST.part` (created or truncated) and only a committed
 * download is renamed to `DEST`. A `ByteWriter` receives the bytes as they
 * come. A `WritableStream` gets a copy of each chunk (streams may keep the
 * chunks they are given); it is neither closed nor aborted, only released.
 *
 * @param destination A local file path, a writer or a stream.
 * @param overwrite Whether an existing file may be replaced.
 * @param options `checked` (nothing is at the path), `native` (save with
 * libc).
 * @returns The receiver.
 * @throws {FerryError} `EXISTS` if the file exists and `overwrite` is not
 * set, `LOCAL` if it is a folder or `DEST.part` cannot be created,
 * `FORBIDDEN` if a folder on the way to a `native` target is a symbolic
 * link.
 */
export function openReceiver(
  destination: string | ByteWriter | WritableStream<Uint8Array>,
  overwrite: boolean,
  options: OpenReceiverOptions = {},
): Promise<Receiver> {
  try {
    return Promise.resolve(openReceiverSync(destination, overwrite, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@linkcode openReceiver}, synchronously (a pipeline opens many).
 *
 * @param destination A local file path, a writer or a stream.
 * @param overwrite Whether an existing file may be replaced.
 * @param options `checked`, `native`.
 * @returns The receiver.
 * @throws {FerryError} As {@linkcode openReceiver}.
 */
export function openReceiverSync(
  destination: string | ByteWriter | WritableStream<Uint8Array>,
  overwrite: boolean,
  options: OpenReceiverOptions,
): Receiver {
  // A path is told first: naming the global WritableStream loads Deno's
  // streams (about 9 ms of a small tree download's start).
  if (typeof destination !== "string") {
    return destination instanceof WritableStream
      ? streamReceiver(destination)
      : writerReceiver(destination);
  }
  if (destination === "") throw new TypeError("Destination must not be empty");
  // Metadata calls and small writes are synchronous: microseconds each on
  // a local disk, against tens for a hop through the blocking-call thread
  // pool, which is most of the cost of a tree of small files. Large chunks
  // are written asynchronously, so hashing overlaps the write.
  if (!options.checked) refuseDestinationSync(destination, overwrite);
  else if (options.native !== undefined) {
    const receiver = nativeReceiver(destination, options.native);
    if (receiver !== undefined) return receiver;
  }
  const part = `${destination}.part`;
  let file: Deno.FsFile;
  try {
    // A part left behind is replaced, never written through: a symbolic
    // link there is refused, and the new part is created exclusively (which
    // does not follow a link made in between).
    if (!options.checked && refuseLinkSync(part)) Deno.removeSync(part);
    file = Deno.openSync(part, { write: true, createNew: true });
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError(
      "LOCAL",
      `Cannot create ${part}: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
  return partReceiver(file, { part, destination });
}

/**
 * The part created with libc in its folder held open; `undefined` where
 * it could not be created (the `Deno` path then tries and says why).
 */
function nativeReceiver(
  destination: string,
  target: NativeTarget,
): Receiver | undefined {
  const { native, folders, folder, key } = target;
  const fd = folders.acquire(folder, key);
  if (fd < 0) {
    if (notAFolder(fd)) {
      throw new FerryError(
        "FORBIDDEN",
        `Refused to write through a symbolic link: a folder on the way to ${destination} is not a real folder`,
      );
    }
    return undefined;
  }
  let part: NativePart | undefined;
  try {
    part = native.createPart(fd, target.name);
  } finally {
    if (part === undefined) folders.release(folder, key);
  }
  if (part === undefined) return undefined;
  return new NativeReceiver(destination, target, part);
}

/**
 * A part made with libc (a class: a tree makes one per file, and its
 * methods are shared, not closures made for each).
 */
class NativeReceiver implements Receiver {
  #destination: string;
  #target: NativeTarget;
  #part: NativePart;
  #held = true;

  constructor(destination: string, target: NativeTarget, part: NativePart) {
    this.#destination = destination;
    this.#target = target;
    this.#part = part;
  }

  /** Made when first asked for (a reply taken whole never is). */
  #writer: ByteWriter | undefined;

  get writer(): ByteWriter {
    return this.#writer ??= {
      write: (p: Uint8Array): Promise<number> => {
        try {
          this.#write(p);
          return Promise.resolve(p.length);
        } catch (error) {
          return handled(Promise.reject(error));
        }
      },
    };
  }

  commit(mtime?: number): Promise<void> {
    try {
      this.#commit(mtime);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  saveWhole(bytes: Uint8Array, mtime: number): void {
    this.#write(bytes);
    this.#commit(mtime);
  }

  discard(keepPart = false): Promise<void> {
    // A commit, failed or not, has already dropped or placed the part
    // and given its folder back (whose number may now be another's).
    if (!this.#held) return Promise.resolve();
    this.#target.native.dropPart(this.#part, keepPart);
    this.#release();
    return Promise.resolve();
  }

  #release(): void {
    if (this.#held) {
      this.#held = false;
      this.#target.folders.release(this.#target.folder, this.#target.key);
    }
  }

  #commit(mtime: number | undefined): void {
    try {
      this.#target.native.commitPart(this.#part, mtime);
    } catch (error) {
      throw new FerryError(
        "LOCAL",
        `Cannot move ${this.#destination}.part to ${this.#destination}: ${
          messageOf(error)
        }`,
        { cause: error },
      );
    } finally {
      this.#release();
    }
  }

  #write(p: Uint8Array): void {
    try {
      this.#target.native.writeAll(this.#part, p);
    } catch (error) {
      throw new FerryError(
        "LOCAL",
        `Cannot write ${this.#destination}.part: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
}

/** A caller's writer: the bytes as they come, nothing to commit. */
function writerReceiver(writer: ByteWriter): Receiver {
  return {
    writer: {
      write(p: Uint8Array): Promise<number> {
        return handled(writer.write(p));
      },
    },
    commit: () => Promise.resolve(),
    discard: () => Promise.resolve(),
  };
}

/**
 * Refuses a download's destination that is a folder, or an existing file
 * without `overwrite`.
 *
 * @param destination The local file path.
 * @param overwrite Whether an existing file may be replaced.
 * @throws {FerryError} `LOCAL` for a folder, `EXISTS` for a file.
 */
export function refuseDestinationSync(
  destination: string,
  overwrite: boolean,
): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(destination);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (info.isDirectory) {
    throw new FerryError("LOCAL", `Destination is a folder: ${destination}`);
  }
  if (!overwrite) {
    throw new FerryError("EXISTS", `Already exists: ${destination}`);
  }
}

/** The fresh `DEST.part` just created: renamed to `DEST` on commit. */
function partReceiver(
  file: Deno.FsFile,
  names: { part: string; destination: string },
): Receiver {
  const { part, destination } = names;
  let open = true;
  let writing: Promise<number> | undefined;
  async function write(p: Uint8Array): Promise<number> {
    try {
      return p.length <= SYNC_WRITE_BYTES
        ? file.writeSync(p)
        : await file.write(p);
    } catch (error) {
      throw new FerryError(
        "LOCAL",
        `Cannot write ${part}: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
  async function closeFile(): Promise<void> {
    if (open) {
      open = false;
      await writing?.catch(() => {});
      file.close();
    }
  }
  return {
    writer: {
      write(p: Uint8Array): Promise<number> {
        writing = handled(write(p));
        return writing;
      },
    },
    async commit(mtime?: number): Promise<void> {
      try {
        if (mtime !== undefined) {
          const time = new Date(mtime);
          file.utimeSync(time, time);
        }
        await closeFile();
        Deno.renameSync(part, destination);
      } catch (error) {
        await closeFile();
        await Deno.remove(part).catch(() => {});
        throw new FerryError(
          "LOCAL",
          `Cannot move ${part} to ${destination}: ${messageOf(error)}`,
          { cause: error },
        );
      }
    },
    async discard(keepPart = false): Promise<void> {
      await closeFile();
      if (!keepPart) await Deno.remove(part).catch(() => {});
    },
  };
}

/**
 * Refuses to write through `path`: a symbolic link there is `FORBIDDEN`,
 * anything else but a regular file is `LOCAL`.
 *
 * @param path A local path the client is about to write.
 * @returns Whether a regular file is there.
 * @throws {FerryError} `FORBIDDEN` for a symbolic link, `LOCAL` for a
 * folder or other non-file, or a path that cannot be looked at.
 */
export function refuseLinkSync(path: string): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new FerryError("LOCAL", `Cannot read ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (info.isSymlink) {
    throw new FerryError(
      "FORBIDDEN",
      `Refused to write through a symbolic link: ${path}`,
    );
  }
  if (!info.isFile) throw new FerryError("LOCAL", `Not a file: ${path}`);
  return true;
}

/** Largest chunk written to a local file synchronously: 64 KiB. */
const SYNC_WRITE_BYTES = 64 * 1024;

function streamReceiver(stream: WritableStream<Uint8Array>): Receiver {
  const writer = stream.getWriter();
  let locked = true;
  function release(): void {
    if (locked) {
      locked = false;
      writer.releaseLock();
    }
  }
  async function write(p: Uint8Array): Promise<number> {
    try {
      // The stream may hold on to the chunk; the bulk buffer is reused.
      await writer.write(p.slice());
    } catch (error) {
      throw new FerryError(
        "LOCAL",
        `Cannot write to the stream: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return p.length;
  }
  return {
    writer: {
      write(p: Uint8Array): Promise<number> {
        return handled(write(p));
      },
    },
    commit(): Promise<void> {
      release();
      return Promise.resolve();
    },
    discard(): Promise<void> {
      release();
      return Promise.resolve();
    },
  };
}
