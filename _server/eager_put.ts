/**
 * The server's eager `PUT`s in strict mode (see `protocol.ts` and
 * `_server/dir_handle.ts`): a client uploading many small files sends each
 * one's `PUT`, bytes and `HASH` without waiting, and the server takes them
 * in runs.
 *
 * Each upload is received at once into a fresh temporary made with
 * `openat(O_CREAT | O_EXCL | O_NOFOLLOW)` in its folder, walked from the
 * root with `O_NOFOLLOW` once per run and held open for the run; the bytes
 * are written and its time set through the new descriptor, and the digest
 * checked. Nothing is named twice and nothing is proven after the fact: the
 * kernel holds the descriptors, so a folder swapped for a link cannot
 * redirect any of it. Every call is a synchronous libc call of a
 * microsecond or two on a warm cache, where the streaming path
 * (`_server/put.ts`) makes about thirty hops through Deno's blocking-call
 * thread pool per file.
 *
 * The run ends when the next request is not an eager `PUT`, or not wholly
 * arrived (the server would wait for the client), or when it holds
 * {@linkcode MAX_RUN} uploads. Then one `syncfs` per file system (on a
 * thread of its own) puts every temporary of the run on disk, each is moved
 * into place (`renameat2(RENAME_NOREPLACE)`, or `renameat` to overwrite)
 * and the replies go in one write, in request order. A file therefore
 * appears whole or not at all, as with the streaming path's `fdatasync`
 * per file, with one disk flush per run instead of one per file.
 *
 * @module
 */

import * as nodePath from "node:path";
import { createHasher, digestFits, digestOf } from "../_common/digest.ts";
import { printable, splitWirePath } from "../_common/wire_path.ts";
import {
  AT_SYMLINK_NOFOLLOW,
  type EntryStatus,
  type Libc,
  walkError,
} from "./dir_handle.ts";
import {
  emit,
  type RequestState,
  type ServerContext,
  type Session,
} from "./context.ts";
import { checkRequestLimits } from "./limits.ts";
import { RACY_MARGIN_MS } from "./hash_cache.ts";
import { refuseTempName, tempNameOf } from "./temp.ts";
import { SMALL_FILE_BYTES } from "./small_get.ts";
import { toHex } from "../_common/bytes.ts";
import { FerryError } from "../errors.ts";
import {
  type DigestAlgorithm,
  encodeMessage,
  type PutMessage,
} from "../protocol.ts";

/** Most uploads held in one run before they are synced and placed. */
export const MAX_RUN = 64;

/** A folder of the run, walked from the root and held open. */
interface Folder {
  fd: number;
  dev: number;
}

/** One eager `PUT` of the run: received and checked, or refused. */
interface Entry {
  message: PutMessage;
  time: Date;
  started: number;
  /** Why it is refused; set before or after placing. */
  error?: FerryError;
  /** Where its temporary is, while it waits for the sync. */
  folder?: Folder;
  temp?: string;
  name?: string;
  /** The temporary's status, when its digest may be cached. */
  identity?: EntryStatus;
  /** Its digest, once checked, and the session's algorithm. */
  digest?: Uint8Array;
  algorithm?: DigestAlgorithm;
  /** The first failed write to the temporary. */
  writeError?: unknown;
}

/**
 * The eager `PUT`s of one connection not yet answered, and the folders
 * they are in.
 */
export class EagerRun {
  #libc: Libc;
  #entries: Entry[] = [];
  #folders = new Map<string, Folder>();
  #root: number | undefined;
  /** Temporaries are named after the connection and a count. */
  #tempBase = randomBase();
  #temps = 0;

  /**
   * A run with nothing in it.
   *
   * @param libc The strict-mode binding.
   */
  constructor(libc: Libc) {
    this.#libc = libc;
  }

  /** Whether the run is full: it must be placed before the next upload. */
  get full(): boolean {
    return this.#entries.length >= MAX_RUN;
  }

  /**
   * Receives one eager `PUT`: its bytes into a new temporary (or nowhere,
   * if it is refused) and its `HASH`, which is checked. Refusals are kept
   * for the reply, in order.
   *
   * @throws {FerryError} `CONNECTION` if the stream ends before the bytes
   * and `HASH` are all read, `BAD_REQUEST` if a frame other than `HASH`
   * follows them: the stream is then lost (`state.closeOnError`).
   */
  async receive(
    session: Session,
    context: ServerContext,
    message: PutMessage,
    state: RequestState,
    since: { time: Date; started: number },
  ): Promise<void> {
    const entry: Entry = {
      message,
      time: since.time,
      started: since.started,
    };
    let fd = -1;
    try {
      fd = this.#open(context, entry);
    } catch (error) {
      entry.error = refusal(error, message.path);
    }
    state.closeOnError = true;
    try {
      const digest = await this.#copy(session, entry, fd);
      state.bytes = message.size;
      const reply = await session.reader.readMessage();
      if (reply === null) {
        state.silentOnError = true;
        throw new FerryError("CONNECTION", "Upload cut short before its HASH");
      }
      if (reply.type !== "hash") {
        throw new FerryError(
          "BAD_REQUEST",
          `Expected HASH, got ${reply.type.toUpperCase()}`,
        );
      }
      state.closeOnError = false;
      if (entry.error === undefined && digest !== undefined) {
        const checked = check(session, entry, digest, reply.digest);
        if (checked instanceof FerryError) entry.error = checked;
        else {
          entry.digest = checked;
          entry.algorithm = session.digest;
        }
      }
      if (entry.error === undefined) {
        try {
          this.#finish(context, entry, fd);
        } catch (error) {
          entry.error = refusal(error, message.path);
        }
      }
    } catch (error) {
      // The stream is lost: this upload's temporary goes too.
      entry.error ??= refusal(error, message.path);
      throw error;
    } finally {
      if (fd >= 0) {
        this.#libc.close(fd);
        if (entry.error !== undefined) this.#removeTemp(entry);
      }
      if (!state.closeOnError) this.#entries.push(entry);
    }
  }

  /**
   * Ends the run: syncs the temporaries, moves them into place and queues
   * every reply of the run with the session's held replies (written in
   * large writes before the session waits for the client). Never throws; a
   * failed write of the replies is the connection's (the next read finds
   * it closed).
   */
  async place(session: Session, context: ServerContext): Promise<void> {
    const entries = this.#entries;
    if (entries.length === 0) {
      this.#closeFolders(); // walked for an upload the stream lost
      return;
    }
    this.#entries = [];
    try {
      await this.#sync(entries);
      for (const entry of entries) {
        if (entry.error === undefined) this.#move(context, entry);
        emit(context, {
          protocol: "ferry",
          request: "PUT",
          path: entry.message.path,
          bytes: entry.error === undefined ? entry.message.size : 0,
          result: entry.error?.code ?? "ok",
          peer: session.peer,
          time: entry.time,
          started: entry.started,
        });
        // Held with the session's other replies, written before it waits.
        await session.replies.queue(
          entry.error === undefined ? OK_FRAME : encodeMessage({
            type: "error",
            code: entry.error.code,
            message: entry.error.message.slice(0, 1000),
          }),
        ).catch(() => {
          // The peer left: the next read of the connection ends the session.
        });
      }
    } finally {
      this.#closeFolders();
    }
  }

  /**
   * Checks an upload's target and creates its temporary; returns the open
   * temporary.
   */
  #open(context: ServerContext, entry: Entry): number {
    const { message } = entry;
    if (!context.allowUpload) {
      throw new FerryError("FORBIDDEN", "Uploads are not allowed");
    }
    checkRequestLimits(message, context.limits);
    const segments = splitWirePath(message.path);
    const name = segments.at(-1);
    if (name === undefined) {
      throw new FerryError("FORBIDDEN", "Cannot write the root folder");
    }
    refuseTempName(segments, message.path);
    const folder = this.#folder(context, segments.slice(0, -1), message.path);
    const libc = this.#libc;
    // Without overwrite, renameat2(RENAME_NOREPLACE) refuses any name
    // taken (EXISTS), atomically: no lookup before. To overwrite, only a
    // regular file may be replaced.
    const existing = message.overwrite
      ? libc.statAtIfAny(folder.fd, name, AT_SYMLINK_NOFOLLOW)
      : undefined;
    if (existing?.isSymlink) {
      throw new FerryError(
        "FORBIDDEN",
        `Target is a symbolic link: ${printable(message.path)}`,
      );
    }
    if (existing && !existing.isFile) {
      throw new FerryError(
        "FORBIDDEN",
        `Target is not a file: ${printable(message.path)}`,
      );
    }
    let temp = this.#tempName();
    let fd: number;
    try {
      try {
        fd = libc.createAt(folder.fd, temp);
      } catch (error) {
        // Someone guessed the next name: start a fresh random series.
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        this.#tempBase = randomBase();
        temp = this.#tempName();
        fd = libc.createAt(folder.fd, temp);
      }
    } catch (error) {
      throw new FerryError(
        "INTERNAL",
        `Cannot create the upload's temporary file: ${printable(message.path)}`,
        { cause: error },
      );
    }
    entry.folder = folder;
    entry.temp = temp;
    entry.name = name;
    return fd;
  }

  /** A fresh temporary's name: `.ferry-<random><count>.part`. */
  #tempName(): string {
    return tempNameOf(`${this.#tempBase}${(this.#temps++).toString(16)}`);
  }

  /**
   * Reads the upload's raw bytes into the temporary `fd` (none if it is -1:
   * a refusal); a failed write is noted and the rest dropped. Returns the
   * digest of the bytes, unless refused.
   */
  async #copy(
    session: Session,
    entry: Entry,
    fd: number,
  ): Promise<Uint8Array | undefined> {
    const size = entry.message.size;
    const reader = session.reader;
    let writing = fd >= 0;
    const take = (chunk: Uint8Array<ArrayBuffer>): void => {
      if (!writing) return;
      try {
        this.#libc.writeAll(fd, chunk);
      } catch (error) {
        writing = false;
        entry.writeError = error;
      }
    };
    if (reader.buffered >= size) {
      // Arrived whole (the usual case): written and hashed in one piece
      // from the read buffer.
      const bytes = reader.bufferedBytes().subarray(0, size) as Uint8Array<
        ArrayBuffer
      >;
      take(bytes);
      const digest = fd >= 0
        ? await digestOf(session.digest, bytes)
        : undefined;
      reader.skip(size);
      return digest;
    }
    const hash = fd >= 0 ? await createHasher(session.digest) : undefined;
    const buffer = session.bulkBuffers(size)[0];
    try {
      for (let left = size; left > 0;) {
        const n = await session.reader.read(
          buffer.subarray(0, Math.min(left, buffer.length)),
        );
        if (n === null) {
          throw new FerryError("CONNECTION", "Upload cut short");
        }
        const chunk = buffer.subarray(0, n) as Uint8Array<ArrayBuffer>;
        hash?.update(chunk);
        take(chunk);
        left -= n;
      }
    } finally {
      session.releaseBuffers(true);
    }
    return hash?.digest();
  }

  /** Sets the temporary's time; notes its identity if it may be cached. */
  #finish(context: ServerContext, entry: Entry, fd: number): void {
    const { message } = entry;
    const libc = this.#libc;
    if (message.mtime !== undefined) libc.setMtime(fd, message.mtime);
    // A small file is hashed again faster than its digest is remembered.
    if (
      context.hashCache !== undefined && message.size > SMALL_FILE_BYTES &&
      message.mtime !== undefined &&
      Date.now() - message.mtime >= RACY_MARGIN_MS
    ) {
      entry.identity = libc.statAt(
        entry.folder!.fd,
        entry.temp!,
        AT_SYMLINK_NOFOLLOW,
      );
    }
  }

  /** One `syncfs` per file system of the run's temporaries. */
  async #sync(entries: Entry[]): Promise<void> {
    const done = new Set<number>();
    for (const entry of entries) {
      const folder = entry.folder;
      if (entry.error !== undefined || folder === undefined) continue;
      if (done.has(folder.dev)) continue;
      done.add(folder.dev);
      try {
        await this.#libc.syncFileSystem(folder.fd);
      } catch (error) {
        for (const other of entries) {
          if (other.error === undefined && other.folder?.dev === folder.dev) {
            other.error = writeFailed(error);
            this.#removeTemp(other);
          }
        }
      }
    }
  }

  /** Moves a synced temporary to its name; a failure refuses the upload. */
  #move(context: ServerContext, entry: Entry): void {
    const { message } = entry;
    const libc = this.#libc;
    const fd = entry.folder!.fd;
    try {
      if (message.overwrite) libc.renameAt(fd, entry.temp!, fd, entry.name!);
      else libc.renameNoReplaceAt(fd, entry.temp!, entry.name!);
    } catch (error) {
      entry.error = error instanceof Deno.errors.AlreadyExists
        ? new FerryError("EXISTS", `Already exists: ${message.path}`)
        : error instanceof Deno.errors.IsADirectory
        ? new FerryError("FORBIDDEN", `Target is a folder: ${message.path}`)
        : new FerryError("INTERNAL", "Internal server error", {
          cause: error,
        });
      this.#removeTemp(entry);
      return;
    }
    const ours = entry.identity;
    const cache = context.hashCache;
    if (ours === undefined || cache === undefined) return;
    // The digest is remembered only if the file at its name is still ours
    // (its change time moved with the rename: the placed status is stored).
    let placed: EntryStatus;
    try {
      placed = libc.statAt(fd, entry.name!, AT_SYMLINK_NOFOLLOW);
    } catch {
      return; // gone already: nothing to remember
    }
    if (placed.ino !== ours.ino || placed.dev !== ours.dev) return;
    cache.store(
      nodePath.join(context.realRoot, ...splitWirePath(message.path)),
      fileInfoOf(placed),
      entry.algorithm!,
      entry.digest!,
      Date.now(),
      { upload: true },
    );
  }

  /** Removes an entry's temporary (errors ignored: it may be gone). */
  #removeTemp(entry: Entry): void {
    if (entry.folder === undefined || entry.temp === undefined) return;
    try {
      this.#libc.unlinkAt(entry.folder.fd, entry.temp);
    } catch {
      // Gone already.
    }
    entry.temp = undefined;
  }

  /**
   * The folder `segments` below the root, walked once per run with
   * `O_NOFOLLOW` from the root's descriptor and held until the run ends.
   */
  #folder(
    context: ServerContext,
    segments: string[],
    wirePath: string,
  ): Folder {
    const key = segments.join("/");
    const held = this.#folders.get(key);
    if (held !== undefined) return held;
    const libc = this.#libc;
    try {
      this.#root ??= libc.openFolder(context.realRoot);
      let fd = this.#root;
      for (const segment of segments) {
        const next = libc.openFolderAt(fd, segment);
        if (fd !== this.#root) libc.close(fd);
        fd = next;
      }
      if (fd === this.#root) fd = libc.openFolderAt(fd, ".");
      let folder: Folder;
      try {
        folder = { fd, dev: libc.statAt(fd, ".", 0).dev };
      } catch (error) {
        libc.close(fd);
        throw error;
      }
      this.#folders.set(key, folder);
      return folder;
    } catch (error) {
      throw walkError(error, wirePath);
    }
  }

  #closeFolders(): void {
    for (const folder of this.#folders.values()) this.#libc.close(folder.fd);
    this.#folders.clear();
    if (this.#root !== undefined) this.#libc.close(this.#root);
    this.#root = undefined;
  }
}

const OK_FRAME = encodeMessage({ type: "ok" });

/** 16 random hex digits. */
function randomBase(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(8)));
}

/** The refusal an error before the bytes becomes (host details stay here). */
function refusal(error: unknown, wirePath: string): FerryError {
  if (error instanceof FerryError) return error;
  const mapped = walkError(error, wirePath);
  if (mapped instanceof FerryError) return mapped;
  return new FerryError("INTERNAL", "Internal server error", { cause: error });
}

/**
 * Checks the digest's length, the writes and the digest itself; returns
 * the digest, or the refusal.
 */
function check(
  session: Session,
  entry: Entry,
  digest: Uint8Array,
  claimed: Uint8Array,
): Uint8Array | FerryError {
  if (!digestFits(session.digest, claimed)) {
    return new FerryError(
      "BAD_REQUEST",
      `HASH of ${claimed.length} bytes in a ${session.digest} session`,
    );
  }
  if ("writeError" in entry) return writeFailed(entry.writeError);
  if (digest.length !== claimed.length) return mismatch(session, entry.message);
  for (let i = 0; i < digest.length; i++) {
    if (digest[i] !== claimed[i]) return mismatch(session, entry.message);
  }
  return digest;
}

/** A `Deno.FileInfo` of what `fstatat` reported (for the hash cache). */
function fileInfoOf(status: EntryStatus): Deno.FileInfo {
  return {
    isFile: status.isFile,
    isDirectory: status.isDirectory,
    isSymlink: status.isSymlink,
    size: status.size,
    mtime: new Date(status.mtime),
    atime: null,
    birthtime: null,
    ctime: new Date(status.ctime),
    dev: status.dev,
    ino: status.ino,
    mode: status.mode,
    nlink: status.nlink,
    uid: null,
    gid: null,
    rdev: null,
    blksize: null,
    blocks: null,
    isBlockDevice: false,
    isCharDevice: false,
    isFifo: false,
    isSocket: false,
  };
}

function mismatch(session: Session, message: PutMessage): FerryError {
  return new FerryError(
    "INTEGRITY",
    `Digest (${session.digest}) mismatch, upload discarded: ${message.path}`,
  );
}

function writeFailed(error: unknown): FerryError {
  const code = (error as { code?: unknown } | undefined)?.code;
  return new FerryError(
    "INTERNAL",
    `Write failed: ${typeof code === "string" ? code : "I/O error"}`,
    { cause: error },
  );
}
