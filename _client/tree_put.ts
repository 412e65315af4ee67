/**
 * Pipelined uploads: many `MKDIR`s and `PUT`s on one connection, and the
 * upload of a local folder tree built on them.
 *
 * To a server that takes eager `PUT`s (its `HELLO` says so, see
 * `protocol.ts`), a file of at most {@linkcode EAGER_FILE_BYTES} is read
 * whole, hashed and sent as `PUT`, bytes and `HASH` at once, without
 * waiting for anything; `MKDIR`s and such uploads are gathered in the
 * session's bulk buffer and leave in large writes, up to
 * {@linkcode EAGER_WINDOW} requests ahead of their replies. Such a file is
 * read before any of it is sent, so one that changes while it is read (its
 * size or time differ after the read) fails alone with `CHANGED`, and
 * nothing of it is sent.
 *
 * A larger file (or any file, to an older server) waits for its `READY`
 * before its bytes go out: the requests before it are answered first, and
 * the next request leaves right after its `HASH`, before its `OK` has come
 * back. It is sent by `sendFile` (`_client/send_file.ts`), as a single
 * upload is: a file that changes while it is sent fails with `CHANGED` and
 * ends the session (nothing padded), and the files after it fail with
 * `CONNECTION`. Without eager `PUT`s, `MKDIR`s are sent up to `window`
 * ahead of their replies.
 *
 * @module
 */

import { lowerFirst } from "../_common/text.ts";
import { localError } from "./local_io.ts";
import { type HeldName, walkFoldersFirst } from "./local_walk.ts";
import { printableName } from "./safe_dest.ts";
import {
  type LocalSource,
  openLocalSource,
  putRequest,
  sendFile,
} from "./send_file.ts";
import {
  asFerryError,
  type FileOutcome,
  type SessionIo,
  windowOf,
} from "./session_io.ts";
import { transferResult } from "./types.ts";
import { FerryError } from "../errors.ts";
import { digestNow, digestOf } from "../_common/digest.ts";
import { nativeRead } from "./native_read.ts";
import {
  encodeMessage,
  encodeMessageInto,
  FRAME_HEADER_BYTES,
  FRAME_TYPES,
  MAX_EAGER_PUT_BYTES,
  type Message,
  writeAll,
} from "../protocol.ts";

/**
 * Largest file sent as an eager `PUT` (when the server takes them): 256
 * KiB. Larger files wait for `READY`, which costs one round trip each.
 */
export const EAGER_FILE_BYTES: number = Math.min(
  256 * 1024,
  MAX_EAGER_PUT_BYTES,
);

/** Most requests sent ahead of their replies when `PUT`s are eager. */
export const EAGER_WINDOW = 256;

/**
 * Gathered requests are written once they reach 64 KiB: large writes, and
 * the server is never left idle while the client reads more files.
 */
const EAGER_FLUSH_BYTES = 64 * 1024;

/** Room the frames around an eager file take at most: `PUT` and `HASH`. */
const EAGER_FRAMES_BYTES = 5 + 8 + 1 + 8 + 2 + 4096 + 5 + 64;

/**
 * One step of {@linkcode pipelinePut}: make a folder (and set its time), or
 * upload a file.
 *
 * @example Upload a file into a new folder
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutManyItem } from "./tree_put.ts";
 * const items: PutManyItem[] = [
 *   { kind: "dir", remote: "docs" },
 *   { kind: "file", local: "a.txt", remote: "docs/a.txt" },
 * ];
 * assert(items.length === 2);
 * ```
 */
export type PutManyItem =
  | { kind: "dir"; remote: string; mtime?: number }
  | {
    kind: "file";
    local: string;
    remote: string;
    /**
     * Size and time as a walk of the local tree saw them: a small file
     * then needs no status before it is read (only one after, which must
     * match, else it goes by the streaming path).
     */
    size?: number;
    mtime?: number;
  };

/**
 * Which file `putTree`'s walk saw behind each file item (device, inode):
 * a read by path that finds another one there (its folder or itself
 * swapped for a link since) fails the item instead of sending it.
 */
const WALKED = new WeakMap<object, Walked>();

/**
 * A walked file: its device and inode, and with libc where the walk found
 * it (read there, never by its path, which could go through a folder
 * swapped for a link since).
 */
interface Walked {
  dev: number;
  ino: number | null;
  at?: HeldName;
}

/** The walk's folder descriptor of `at`; throws if it was closed. */
function heldFd(at: HeldName, local: string): number {
  if (at.folder.fd < 0) throw replacedSinceWalk(local);
  return at.folder.fd;
}

/** Whether `item` was walked as another file than `found`. */
function replaced(
  item: object,
  found: { dev: number; ino: number | null },
): boolean {
  const walked = WALKED.get(item);
  return walked !== undefined &&
    (found.dev !== walked.dev || found.ino !== walked.ino);
}

/** The `LOCAL` failure of a walked file now another. */
function replacedSinceWalk(local: string): FerryError {
  return new FerryError(
    "LOCAL",
    `Local file replaced since the walk (not sent): ${local}`,
  );
}

/**
 * Options of {@linkcode pipelinePut} (and `FerryClient.putMany`).
 *
 * @example Overwrite
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutManyOptions } from "./tree_put.ts";
 * const options: PutManyOptions = { overwrite: true };
 * assert(options.overwrite);
 * ```
 */
export interface PutManyOptions {
  /**
   * Most `MKDIR`s sent ahead of their replies.
   *
   * @default {32}
   */
  window?: number;
  /**
   * Replace existing remote files.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /** Called when a file's bytes start, with its size. */
  onStart?: (path: string, size: number) => void;
  /** Called after each chunk of a file. */
  onProgress?: (path: string, done: number, total: number) => void;
  /** Called once per item, in order, with its index. */
  onFile?: (outcome: FileOutcome, index: number) => void;
}

/**
 * Runs `items` in order over one session.
 *
 * @param io The session, from inside the client's request queue.
 * @param items Folders to make and files to upload, taken one at a time
 * (each once the one before it is sent: a generator may make them as it
 * goes).
 * @param options Window, overwrite, callbacks.
 * @returns One outcome per item, in order.
 */
export async function pipelinePut(
  io: SessionIo,
  items: Iterable<PutManyItem>,
  options: PutManyOptions = {},
): Promise<FileOutcome[]> {
  return await new PutPipeline(io, items, options).run();
}

/** A request whose reply is still to be read. */
interface Pending {
  index: number;
  read: () => Promise<void>;
  /** Its outcome when the reply is `OK` (then taken in place). */
  success?: () => FileOutcome;
}

/**
 * The state of one {@linkcode pipelinePut}: the outcomes so far, the
 * requests gathered but not yet written, and those whose replies are still
 * to be read.
 */
class PutPipeline {
  #io: SessionIo;
  #source: Iterable<PutManyItem>;
  /** The items taken from the source so far. */
  #items: PutManyItem[] = [];
  #options: PutManyOptions;
  #window: number;
  #outcomes: FileOutcome[] = [];
  #pending: Pending[] = [];
  /** Requests gathered for one write (eager sessions only). */
  #out: Uint8Array | undefined;
  #outLength = 0;
  /** When the gathered requests began: the start of their transfers. */
  #clock = performance.now();

  constructor(
    io: SessionIo,
    items: Iterable<PutManyItem>,
    options: PutManyOptions,
  ) {
    const window = windowOf(options.window);
    this.#window = io.eagerPut ? Math.max(window, EAGER_WINDOW) : window;
    this.#io = io;
    this.#source = items;
    this.#options = options;
    if (io.eagerPut) this.#out = io.buffers()[0];
  }

  /**
   * Sends every item; a broken session fails the ones not yet answered,
   * and the ones the source still has.
   */
  async run(): Promise<FileOutcome[]> {
    const items = this.#items;
    const source = this.#source[Symbol.iterator]();
    // A source abandoned early (a callback threw) is closed: the tree
    // walk's held folder descriptors with it.
    try {
      try {
        for (let next = source.next(); !next.done; next = source.next()) {
          const item = next.value;
          const index = items.push(item) - 1;
          if (item.kind === "dir") await this.#mkdir(index, item);
          else if (!await this.#eager(index, item)) {
            await this.#put(index, item);
          }
        }
        await this.#drain(0);
      } catch (error) {
        this.#io.close();
        const lost = sessionLost(error);
        for (let index = 0; index < items.length; index++) {
          if (this.#outcomes[index] === undefined) {
            this.#report(index, this.#failure(index, lost));
          }
        }
        for (let next = source.next(); !next.done; next = source.next()) {
          const index = items.push(next.value) - 1;
          this.#report(index, this.#failure(index, lost));
        }
      }
    } finally {
      source.return?.();
    }
    return this.#outcomes;
  }

  /** Sends a `MKDIR`, keeping at most a window of requests unanswered. */
  async #mkdir(
    index: number,
    item: Extract<PutManyItem, { kind: "dir" }>,
  ): Promise<void> {
    let frame: Uint8Array;
    try {
      frame = encodeMessage({
        type: "mkdir",
        path: item.remote,
        mtime: item.mtime,
      });
    } catch (error) {
      this.#report(index, this.#failure(index, error));
      return;
    }
    if (this.#needsRoom(frame.length)) await this.#flush();
    if (this.#out === undefined) await writeAll(this.#io.sink, frame);
    else this.#append(frame);
    const success = (): FileOutcome => ({ path: item.remote, kind: "dir" });
    this.#pending.push({
      index,
      read: () => this.#expectOk(index, success),
      success,
    });
    if (this.#overWindow()) await this.#keepWindow();
  }

  /**
   * Sends a small file as an eager `PUT`: read whole into the gathered
   * requests, then its `HASH`. Returns false, having sent nothing, when the
   * session or the file's size does not allow it, or when the file changed
   * since the walk saw it (the streaming path then sends it as it is).
   */
  async #eager(
    index: number,
    item: Extract<PutManyItem, { kind: "file" }>,
  ): Promise<boolean> {
    const out = this.#out;
    if (out === undefined) return false;
    let file: Deno.FsFile | undefined;
    try {
      let size: number;
      let mtime: number | undefined;
      const native = item.size !== undefined && item.mtime !== undefined
        ? nativeRead()
        : undefined;
      if (item.size !== undefined && item.mtime !== undefined) {
        size = item.size;
        mtime = item.mtime;
        if (!this.#eagerSize(size)) return false;
      }
      let putLength: number;
      try {
        if (native === undefined) {
          file = openLocal(item.local);
          if (item.size === undefined || item.mtime === undefined) {
            const info = statLocal(file, item.local);
            size = info.size;
            mtime = info.mtime?.getTime();
            if (!this.#eagerSize(size)) return false;
          }
        }
      } catch (error) {
        this.#report(index, this.#failure(index, error));
        return true;
      }
      // Room for the PUT (its longest path), the bytes and the HASH. A
      // failed write here is the session's, not this file's: it is thrown.
      if (this.#needsRoom(size! + EAGER_FRAMES_BYTES)) await this.#flush();
      try {
        // Written in place, where the file's bytes follow it (a path too
        // long fails here, before anything of it is sent).
        putLength = encodeMessageInto(
          {
            type: "put",
            path: item.remote,
            size: size!,
            overwrite: this.#options.overwrite ?? false,
            resume: false,
            eager: true,
            mtime,
          },
          out,
          this.#outLength,
        );
      } catch (error) {
        this.#report(index, this.#failure(index, error));
        return true;
      }
      const at = this.#outLength + putLength;
      const bytes = out.subarray(at, at + size!);
      let digest: Uint8Array;
      try {
        if (native !== undefined) {
          const at = WALKED.get(item)?.at;
          const got = at !== undefined
            ? native.readWholeAt(heldFd(at, item.local), at.name, bytes)
            : native.readWhole(item.local, bytes);
          if (got !== undefined && replaced(item, got)) {
            const error = replacedSinceWalk(item.local);
            this.#report(index, this.#failure(index, error));
            return true;
          }
          // Changed since the walk, or anything odd: the usual path.
          if (
            got === undefined || got.read !== size! || got.size !== size! ||
            got.mtime !== mtime
          ) {
            return false;
          }
        } else {
          const whole = readWhole(file!, bytes, item.local);
          const after = statLocal(file!, item.local);
          if (
            !whole || after.size !== size! || after.mtime?.getTime() !== mtime
          ) {
            // Changed since the walk: the streaming path sends it as it is.
            if (item.size !== undefined) return false;
            throw new FerryError(
              "CHANGED",
              `Local file changed while it was read: ${item.local}`,
            );
          }
        }
        this.#options.onStart?.(item.remote, size!);
        // No await where the digest is at hand (libxxhash): a tree's files
        // go without a turn of the event loop each.
        digest = digestNow(this.#io.digest, bytes) ??
          await digestOf(this.#io.digest, bytes);
      } catch (error) {
        this.#report(index, this.#failure(index, error));
        return true;
      }
      this.#outLength += putLength + size!;
      this.#outLength += encodeMessageInto(
        { type: "hash", digest },
        out,
        this.#outLength,
      );
      this.#options.onProgress?.(item.remote, size!, size!);
      this.#expectFile(index, item, {
        size: size!,
        digest,
        since: this.#clock,
      });
    } finally {
      file?.close();
    }
    // The server starts on what is gathered while the next files are read.
    if (this.#outLength >= EAGER_FLUSH_BYTES) await this.#flush();
    if (this.#overWindow()) await this.#keepWindow();
    return true;
  }

  /**
   * Uploads a file with `sendFile`; its `OK` is read after the next
   * request left. A refusal fails the file; a file that changed while it
   * was sent fails with `CHANGED` and ends the session.
   */
  async #put(
    index: number,
    item: Extract<PutManyItem, { kind: "file" }>,
  ): Promise<void> {
    const opened = await this.#open(index, item);
    if (opened === undefined) return;
    const io = this.#io;
    using source = opened.source;
    // The previous file's OK is still on its way while this PUT travels.
    await this.#flush();
    await io.send([opened.request]);
    await this.#drain(0);
    const since = performance.now();
    try {
      const ready = await io.expect("ready");
      this.#options.onStart?.(item.remote, source.size);
      const onProgress = this.#options.onProgress;
      const digest = await sendFile(io, source, ready.offset, {
        resume: false,
        onProgress: onProgress &&
          ((done, total) => onProgress(item.remote, done, total)),
      });
      this.#expectFile(index, item, { size: source.size, digest, since });
    } catch (error) {
      this.#report(index, this.#failure(index, error));
      if (!io.recoverable(error)) throw error;
    }
  }

  /** Opens a local file and makes its `PUT`; a failure fails the file. */
  async #open(
    index: number,
    item: Extract<PutManyItem, { kind: "file" }>,
  ): Promise<{ source: LocalSource; request: Message } | undefined> {
    let source: LocalSource | undefined;
    try {
      const at = WALKED.get(item)?.at;
      source = await openLocalSource(
        item.local,
        at && { fd: heldFd(at, item.local), name: at.name },
      );
      if (replaced(item, source.identity)) {
        throw replacedSinceWalk(item.local);
      }
      const request = putRequest(source, item.remote, {
        overwrite: this.#options.overwrite ?? false,
        resume: false,
      });
      encodeMessage(request); // a path too long fails here, not mid-stream
      return { source, request };
    } catch (error) {
      source?.close();
      this.#report(index, this.#failure(index, error));
      return undefined;
    }
  }

  /** Notes that a file's `OK` is to be read; it then succeeds. */
  #expectFile(
    index: number,
    item: Extract<PutManyItem, { kind: "file" }>,
    sent: { size: number; digest: Uint8Array; since: number },
  ): void {
    const success = (): FileOutcome => ({
      path: item.remote,
      kind: "file",
      local: item.local,
      result: transferResult(item.remote, sent.size, {
        algorithm: this.#io.digest,
        digest: sent.digest,
        start: sent.since,
      }),
    });
    this.#pending.push({
      index,
      read: () => this.#expectOk(index, success),
      success,
    });
  }

  /** Whether a file of `size` bytes goes as an eager `PUT`. */
  #eagerSize(size: number): boolean {
    return size <= EAGER_FILE_BYTES &&
      size + EAGER_FRAMES_BYTES <= this.#out!.length;
  }

  /** Appends a frame to the gathered requests (room was made). */
  #append(frame: Uint8Array): void {
    this.#out!.set(frame, this.#outLength);
    this.#outLength += frame.length;
  }

  /**
   * Whether `bytes` more would not fit in the gathered requests (which
   * are then written first). Synchronous: the common case costs no await.
   */
  #needsRoom(bytes: number): boolean {
    const out = this.#out;
    return out !== undefined && this.#outLength + bytes > out.length;
  }

  /** Writes the gathered requests. */
  async #flush(): Promise<void> {
    this.#clock = performance.now();
    if (this.#outLength === 0) return;
    const bytes = this.#out!.subarray(0, this.#outLength);
    this.#outLength = 0;
    await writeAll(this.#io.sink, bytes);
  }

  /** Whether the unanswered requests fill the window: see #keepWindow. */
  #overWindow(): boolean {
    return this.#pending.length >= this.#window;
  }

  /**
   * Brings the requests unanswered back within the window (called when
   * {@linkcode #overWindow}): without eager `PUT`s one reply is read per
   * request past it; with them, half the window is read at once, so that
   * requests and replies flow in large writes.
   */
  async #keepWindow(): Promise<void> {
    await this.#drain(
      this.#out === undefined ? this.#window - 1 : this.#window >> 1,
    );
  }

  /**
   * Writes what is gathered, then reads the replies of all but the last
   * `limit` pending requests.
   */
  async #drain(limit: number): Promise<void> {
    if (this.#pending.length > limit) await this.#flush();
    while (this.#pending.length > limit) {
      const next = this.#pending[0];
      if (next.success !== undefined && this.#takeBufferedOk()) {
        this.#report(next.index, next.success());
      } else await next.read();
      this.#pending.shift();
    }
  }

  /**
   * Takes an `OK` frame from the start of the bytes already received, in
   * place (a tree's replies arrive by the hundred in one read): true if
   * there was one. Anything else is left for `expect`.
   */
  #takeBufferedOk(): boolean {
    const bytes = this.#io.buffered?.();
    if (
      bytes === undefined || bytes.length < FRAME_HEADER_BYTES ||
      bytes[0] !== FRAME_TYPES.ok ||
      (bytes[1] | bytes[2] | bytes[3] | bytes[4]) !== 0
    ) {
      return false;
    }
    this.#io.consume!(FRAME_HEADER_BYTES);
    return true;
  }

  /** Reads one reply; a refusal is reported, a broken session rethrown. */
  async #expectOk(
    index: number,
    success: () => FileOutcome,
  ): Promise<void> {
    try {
      await this.#io.expect("ok");
    } catch (error) {
      this.#report(index, this.#failure(index, error));
      if (!this.#io.recoverable(error)) throw error;
      return;
    }
    this.#report(index, success());
  }

  #report(index: number, outcome: FileOutcome): void {
    this.#outcomes[index] = outcome;
    this.#options.onFile?.(outcome, index);
  }

  #failure(index: number, error: unknown): FileOutcome {
    const item = this.#items[index];
    return {
      path: item.remote,
      kind: item.kind,
      local: item.kind === "file" ? item.local : undefined,
      error: asFerryError(error),
    };
  }
}

/** Opens a local file to read it whole; errors are `LOCAL`. */
function openLocal(path: string): Deno.FsFile {
  try {
    return Deno.openSync(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new FerryError("LOCAL", `Local file not found: ${path}`);
    }
    throw localError("open", path, error);
  }
}

/** The status of an open local file, which must be a regular file. */
function statLocal(file: Deno.FsFile, path: string): Deno.FileInfo {
  let info: Deno.FileInfo;
  try {
    info = file.statSync();
  } catch (error) {
    throw localError("open", path, error);
  }
  if (!info.isFile) throw new FerryError("LOCAL", `Not a file: ${path}`);
  return info;
}

/**
 * Fills `bytes` from the start of `file`; false if the file ends first.
 *
 * @throws {FerryError} `LOCAL` if it cannot be read.
 */
function readWhole(
  file: Deno.FsFile,
  bytes: Uint8Array,
  path: string,
): boolean {
  for (let at = 0; at < bytes.length;) {
    let n: number | null;
    try {
      n = file.readSync(bytes.subarray(at));
    } catch (error) {
      throw localError("read", path, error);
    }
    if (n === null) return false;
    at += n;
  }
  return true;
}

/**
 * The error for the items a broken session leaves unanswered: the
 * session's own failure, or `CONNECTION` when one file's failure
 * (`CHANGED`, `LOCAL`) is what ended it.
 */
function sessionLost(error: unknown): FerryError {
  const cause = asFerryError(error);
  if (cause.code !== "CHANGED" && cause.code !== "LOCAL") return cause;
  return new FerryError(
    "CONNECTION",
    `Connection closed: ${lowerFirst(cause.message)}`,
    { cause },
  );
}

/**
 * What {@linkcode putTree} needs of a client.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TreePutClient } from "./tree_put.ts";
 * const methods: (keyof TreePutClient)[] = ["putMany"];
 * assert(methods.length === 1);
 * ```
 */
export interface TreePutClient {
  /** Pipelined `MKDIR`s and `PUT`s. */
  putMany(
    items: Iterable<PutManyItem>,
    options?: PutManyOptions,
  ): Promise<FileOutcome[]>;
}

/**
 * What {@linkcode putTree} did.
 *
 * @example Count failures
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutTreeReport } from "./tree_put.ts";
 * const report: PutTreeReport = { outcomes: [], total: 0, failed: 0, skipped: [] };
 * assert(report.failed === 0);
 * ```
 */
export interface PutTreeReport {
  /** One outcome per folder and file. */
  outcomes: FileOutcome[];
  /** Number of folders and files. */
  total: number;
  /** Number that failed. */
  failed: number;
  /** Local entries left out (symbolic links, special files, bad names). */
  skipped: { name: string; reason: string }[];
}

/**
 * Options of {@linkcode putTree}.
 *
 * @example Overwrite
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PutTreeOptions } from "./tree_put.ts";
 * const options: PutTreeOptions = { overwrite: true };
 * assert(options.overwrite);
 * ```
 */
export interface PutTreeOptions extends Omit<PutManyOptions, "onFile"> {
  /**
   * Called with the tree's number of files and bytes once the local walk
   * has ended (the first files have been sent by then). If it throws,
   * nothing more is sent: the files already sent are answered, and
   * `putTree` then rejects with that error.
   */
  onListed?: (files: number, bytes: number) => void;
  /** Called once per folder and file. */
  onFile?: (outcome: FileOutcome) => void;
}

/**
 * Uploads the local folder `localDir` as `remoteDir`: its folders first (a
 * pipelined run of `MKDIR`s, read before anything is sent), then its files,
 * sent while the walk goes on (each file's status is taken just before it
 * is read), then each folder's time, deepest first, so that the remote
 * times match the local ones. Symbolic links inside it are not followed:
 * they are skipped and listed, as are special files and names the protocol
 * cannot carry.
 *
 * @param client A connected client.
 * @param localDir Local folder (it may itself be a link to a folder).
 * @param remoteDir Remote folder; `""` uploads into the root.
 * @param options Overwrite, window, callbacks.
 * @returns One outcome per folder and file, and what was skipped.
 * @throws {FerryError} `LOCAL` if `localDir` is not a readable folder
 * (nothing is sent then).
 * @throws {Error} What `onListed` threw, once the files sent before are
 * answered.
 */
export async function putTree(
  client: TreePutClient,
  localDir: string,
  remoteDir: string,
  options: PutTreeOptions = {},
): Promise<PutTreeReport> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(localDir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new FerryError("LOCAL", `Local folder not found: ${localDir}`);
    }
    throw localError("open", localDir, error);
  }
  if (!info.isDirectory) {
    throw new FerryError("LOCAL", `Not a folder: ${localDir}`);
  }
  const prefix = remoteDir === "" ? "" : `${remoteDir}/`;
  const folders: { remote: string; mtime: number }[] = [];
  const skipped: { name: string; reason: string }[] = [];
  /** What the walk found since the items last took it. */
  const found: PutManyItem[] = [];
  let files = 0;
  let bytes = 0;
  let walk: Generator<void, void, undefined>;
  try {
    walk = walkFoldersFirst(localDir, {
      entry(name, path, entry, at) {
        if (entry.isSymlink) {
          skipped.push({ name, reason: "symbolic link, not followed" });
        } else if (entry.isDirectory) {
          const remote = prefix + name;
          folders.push({ remote, mtime: entry.mtime?.getTime() ?? 0 });
          found.push({ kind: "dir", remote });
        } else if (entry.isFile) {
          const item: PutManyItem = {
            kind: "file",
            local: path,
            remote: prefix + name,
            size: entry.size,
            mtime: entry.mtime?.getTime(),
          };
          if (entry.dev !== undefined && entry.ino !== undefined) {
            WALKED.set(item, { dev: entry.dev, ino: entry.ino, at });
          }
          found.push(item);
          files++;
          bytes += entry.size;
        } else {
          skipped.push({ name, reason: "not a file or folder" });
        }
      },
      skip(name, reason, badName) {
        skipped.push({ name: badName ? printableName(name) : name, reason });
      },
    });
  } catch (error) {
    throw localError("read", localDir, error);
  }
  /** Items before the folders' times: the ones reported. */
  let reported = Infinity;
  let listedFailure: { error: unknown } | undefined;
  function* items(): Generator<PutManyItem, void, undefined> {
    // Abandoned early, the walk closes the folders it holds open.
    try {
      if (remoteDir !== "") yield { kind: "dir", remote: remoteDir };
      let count = remoteDir === "" ? 0 : 1;
      for (let step = walk.next();; step = walk.next()) {
        // The folders the first pass found, then each file as it is walked.
        for (let at = 0; at < found.length; at++) yield found[at];
        count += found.length;
        found.length = 0;
        if (step.done) break;
      }
      reported = count;
      try {
        options.onListed?.(files, bytes);
      } catch (error) {
        // Not the session's failure: the files sent are answered first.
        listedFailure = { error };
        return;
      }
      for (let at = folders.length - 1; at >= 0; at--) {
        yield { kind: "dir", ...folders[at] };
      }
      if (remoteDir !== "") {
        yield {
          kind: "dir",
          remote: remoteDir,
          mtime: info.mtime?.getTime() ?? 0,
        };
      }
    } finally {
      walk.return();
    }
  }
  const { onFile } = options;
  const outcomes = await client.putMany(items(), {
    ...options,
    onFile: (outcome, index) => {
      if (index < reported) onFile?.(outcome);
    },
  });
  if (listedFailure !== undefined) throw listedFailure.error;
  const main = outcomes.slice(0, reported);
  return {
    outcomes: main,
    total: main.length,
    failed: main.filter((outcome) => outcome.error).length,
    skipped,
  };
}
