/**
 * The client's one way of sending a file, used by every upload: a single
 * `FerryClient.put` (resumed or not) and the pipelined and tree uploads
 * (`_client/tree_put.ts`).
 *
 * {@linkcode openLocalSource} opens the local file and notes its size and
 * time; after the server's `READY offset`, {@linkcode sendFile} hashes the
 * first `offset` bytes (a resumed upload: the server holds them), sends the
 * rest raw and then the whole file's `HASH`. {@linkcode putFile} is the
 * whole request for one file: `PUT`, `READY`, the bytes, `HASH`, `OK`.
 *
 * One rule when the local file changes while it is sent (its size or time
 * differ at the end, or it ends early): that file fails with `CHANGED`,
 * before its `HASH`, and the session closes. Nothing is padded and no
 * digest is altered: the server gets no `HASH`, so it keeps no file (a
 * resumable upload keeps its part, named after the old size and time, which
 * no later upload of the changed file continues). Other files of a
 * pipelined upload then fail with `CONNECTION`. (A small file of a
 * pipelined upload to a server that takes eager `PUT`s is read whole before
 * any byte is sent: if it changed meanwhile it fails alone with `CHANGED`
 * and nothing of it is sent; see `_client/tree_put.ts`.)
 *
 * An upload sends the resume flag; the server answers `READY offset` with
 * the length of its part of this very upload (see `_server/upload_part.ts`).
 * If the server then reports `INTEGRITY` (its part held other bytes; it has
 * removed it), {@linkcode putFile} starts over once from 0. An appending
 * upload (`append`, a sync's grown file) sends the append flag instead: the
 * offset is the length of the server's current file, and an `INTEGRITY`
 * there starts over once, whole, without it.
 *
 * @module
 */

import { createHasher } from "../_common/digest.ts";
import { copyHashed } from "../_common/copy.ts";
import { localError, localReader } from "./local_io.ts";
import type { SessionIo } from "./session_io.ts";
import {
  type TransferOptions,
  type TransferResult,
  transferResult,
} from "./types.ts";
import { FerryError } from "../errors.ts";
import { type NativeRead, nativeRead } from "./native_read.ts";
import { AT_FDCWD } from "../_common/linux_abi.ts";
import type { ByteReader, PutMessage } from "../protocol.ts";

/** A local file opened to be uploaded, by {@linkcode openLocalSource}. */
export interface LocalSource extends Disposable {
  /** Its local path, for messages. */
  readonly path: string;
  /** Its size when it was opened. */
  readonly size: number;
  /** Its modification time then, milliseconds, if known. */
  readonly mtime: number | undefined;
  /** Its device and inode: which file was opened. */
  readonly identity: { dev: number; ino: number | null };
  /** Reads the file; errors become `LOCAL`. */
  readonly reader: ByteReader;
  /** Moves the reader back to the first byte. */
  rewind(): Promise<void>;
  /** Whether the file's size or time differ from when it was opened. */
  changed(): Promise<boolean>;
  /** Closes the file. */
  close(): void;
}

/**
 * Opens a local file to upload. With libc (`nativeRead`) it is opened
 * non-blocking and must be a regular file before Deno opens it again
 * (through `/proc/self/fd`, the very file opened): a FIFO put in its place
 * never blocks the open. Without libc, `Deno.stat` must call it a regular
 * file just before `Deno.open`: best effort (a FIFO swapped in between
 * those two calls still blocks the open).
 *
 * @param path The local file (for messages, and opened unless `at`).
 * @param at Where a walk found it with libc: `name` in the folder open as
 * `fd` (opened there with `O_NOFOLLOW`, never by its path).
 * @returns The open file with its size and time.
 * @throws {FerryError} `LOCAL` if it does not exist (`Local file not found:
 * PATH`), cannot be opened or is not a regular file.
 *
 * @example Open and close
 * ```ts ignore
 * import { openLocalSource } from "./send_file.ts";
 * using source = await openLocalSource("notes.txt");
 * console.log(source.size);
 * ```
 */
export async function openLocalSource(
  path: string,
  at?: { fd: number; name: string },
): Promise<LocalSource> {
  if (at !== undefined) {
    const native = nativeRead();
    if (native === undefined) {
      throw new FerryError("LOCAL", `Cannot open: ${path}`);
    }
    return openAt(native, path, at);
  }
  let file: Deno.FsFile;
  try {
    file = await openRegular(path);
  } catch (error) {
    if (error instanceof FerryError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      throw new FerryError("LOCAL", `Local file not found: ${path}`);
    }
    throw localError("open", path, error);
  }
  let info: Deno.FileInfo;
  try {
    info = await file.stat();
    if (!info.isFile) throw new FerryError("LOCAL", `Not a file: ${path}`);
  } catch (error) {
    file.close();
    throw localError("open", path, error);
  }
  const size = info.size;
  const mtime = info.mtime?.getTime();
  let open = true;
  function close(): void {
    if (open) {
      open = false;
      file.close();
    }
  }
  return {
    path,
    size,
    mtime,
    identity: { dev: info.dev, ino: info.ino },
    reader: localReader(file, path),
    async rewind(): Promise<void> {
      await file.seek(0, Deno.SeekMode.Start);
    },
    async changed(): Promise<boolean> {
      const after = await file.stat();
      return after.size !== size || after.mtime?.getTime() !== mtime;
    },
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * Opens `path` if it is a regular file; see `openLocalSource`. With libc,
 * the file Deno opens by path must be the one opened non-blocking: a
 * FIFO swapped in between the two opens still blocks (best effort too).
 */
async function openRegular(path: string): Promise<Deno.FsFile> {
  const native = nativeRead();
  const fd = native?.openFileAt(AT_FDCWD, path, true);
  if (fd === undefined) {
    // Deno says why (not found, refused) in its usual words.
    if (!(await Deno.stat(path)).isFile) {
      throw new FerryError("LOCAL", `Not a file: ${path}`);
    }
    if (native !== undefined) {
      throw new FerryError("LOCAL", `Cannot open: ${path}`);
    }
    return await Deno.open(path, { read: true });
  }
  try {
    const opened = native!.statFd(fd)!;
    const file = await Deno.open(path, { read: true });
    const info = await file.stat().catch(() => undefined);
    if (info?.dev !== opened.dev || info?.ino !== opened.ino) {
      file.close();
      throw new FerryError(
        "LOCAL",
        `Local file replaced while opened: ${path}`,
      );
    }
    return file;
  } finally {
    native!.close(fd);
  }
}

/**
 * `name` in the folder open as `at.fd`, opened and read with libc
 * (`O_NOFOLLOW | O_NONBLOCK`, a regular file, `pread`): never by a path,
 * which could go through a folder swapped for a link. Reads are
 * synchronous (a regular file's, as `put -r`'s small files are read).
 */
function openAt(
  native: NativeRead,
  path: string,
  at: { fd: number; name: string },
): LocalSource {
  const fd = native.openFileAt(at.fd, at.name, false);
  const info = fd === undefined ? undefined : native.statFd(fd);
  if (info === undefined) {
    if (fd !== undefined) native.close(fd);
    throw new FerryError(
      "LOCAL",
      `Not a file (or replaced since the walk): ${path}`,
    );
  }
  const size = info.size;
  const mtime = info.mtime?.getTime();
  let position = 0;
  let open = true;
  function close(): void {
    if (open) {
      open = false;
      native.close(fd!);
    }
  }
  return {
    path,
    size,
    mtime,
    identity: { dev: info.dev!, ino: info.ino ?? null },
    reader: {
      read(p: Uint8Array): Promise<number | null> {
        const n = native.readFd(fd!, p, position);
        if (n < 0) {
          return Promise.reject(
            new FerryError("LOCAL", `Cannot read ${path}`),
          );
        }
        position += n;
        return Promise.resolve(n === 0 && p.length > 0 ? null : n);
      },
    },
    rewind(): Promise<void> {
      position = 0;
      return Promise.resolve();
    },
    changed(): Promise<boolean> {
      const after = native.statFd(fd!);
      return Promise.resolve(
        after === undefined || after.size !== size ||
          after.mtime?.getTime() !== mtime,
      );
    },
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * The `PUT` request for a local file.
 *
 * @param source The open local file.
 * @param remotePath Path on the server.
 * @param options `overwrite` and `resume` flags.
 * @returns The message.
 *
 * @example Build a request
 * ```ts ignore
 * import { openLocalSource, putRequest } from "./send_file.ts";
 * using source = await openLocalSource("notes.txt");
 * console.log(putRequest(source, "notes.txt", { overwrite: true, resume: false }));
 * ```
 */
export function putRequest(
  source: LocalSource,
  remotePath: string,
  options: { overwrite: boolean; resume: boolean; append?: boolean },
): PutMessage {
  const request: PutMessage = {
    type: "put",
    path: remotePath,
    size: source.size,
    overwrite: options.overwrite,
    resume: options.resume,
    mtime: source.mtime,
  };
  if (options.append) request.append = true;
  return request;
}

/** Options of {@linkcode sendFile}. */
export interface SendFileOptions {
  /** Whether the `PUT` asked to resume (a non-zero offset is allowed). */
  resume: boolean;
  /** Called before the bytes go when the upload resumes at `offset`. */
  onResume?: (offset: number, total: number) => void;
  /** Called after each chunk: bytes of the whole file so far, its size. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Sends a file after the server's `READY offset`: bytes `offset..size` raw,
 * then `HASH` of the whole file (its first `offset` bytes are read and
 * hashed locally).
 *
 * @param io The session.
 * @param source The open local file.
 * @param offset The offset of the server's `READY`.
 * @param options The resume flag of the request and callbacks.
 * @returns The digest sent.
 * @throws {FerryError} `PROTOCOL` for an offset the request does not
 * allow; `CHANGED` if the local file changed while it was sent (nothing
 * more is sent: the session must close); `LOCAL` if it cannot be read;
 * `CONNECTION` if the session breaks.
 *
 * @example Send after READY
 * ```ts ignore
 * import { openLocalSource, putRequest, sendFile } from "./send_file.ts";
 * import { localError, localReader } from "./local_io.ts";
import type { SessionIo } from "./session_io.ts";
 * declare const io: SessionIo;
 * using source = await openLocalSource("notes.txt");
 * await io.send([putRequest(source, "notes.txt", { overwrite: true, resume: false })]);
 * const ready = await io.expect("ready");
 * await sendFile(io, source, ready.offset, { resume: false });
 * await io.expect("ok");
 * ```
 */
export async function sendFile(
  io: SessionIo,
  source: LocalSource,
  offset: number,
  options: SendFileOptions,
): Promise<Uint8Array> {
  const { size } = source;
  if (offset > size || (offset !== 0 && !options.resume)) {
    throw new FerryError(
      "PROTOCOL",
      `READY at offset ${offset} for an upload of ${size} bytes${
        options.resume ? "" : " that does not resume"
      }`,
    );
  }
  const hash = await createHasher(io.digest);
  await source.rewind();
  const buffers = io.buffers();
  const hashed = offset === 0
    ? 0
    : await copyHashed(source.reader, undefined, offset, hash, buffers);
  if (offset > 0) options.onResume?.(offset, size);
  const onProgress = options.onProgress;
  const moved = hashed < offset ? 0 : await copyHashed(
    source.reader,
    io.sink,
    size - offset,
    hash,
    buffers,
    onProgress && ((done) => onProgress(offset + done, size)),
  );
  if (hashed < offset || moved < size - offset || await source.changed()) {
    throw new FerryError(
      "CHANGED",
      `Local file changed while it was sent: ${source.path}`,
    );
  }
  const digest = hash.digest();
  await io.send([{ type: "hash", digest }]);
  return digest;
}

/**
 * Uploads the local file `localPath` to `remotePath`: `PUT`, `READY`,
 * {@linkcode sendFile}, `OK`. With `resume` (the default) the server may
 * answer that it already holds the first bytes of this very upload, and
 * only the rest is sent; if that part turns out not to match, the upload
 * starts over once from 0.
 *
 * @param io The session.
 * @param paths `local` file and `remote` path.
 * @param options `overwrite`, `resume`, `onProgress` (bytes of the whole
 * file), `onResume`, `onRestart`.
 * @returns What was transferred, with `resumedFrom` and `restarted`.
 * @throws {FerryError} As `FerryClient.put`.
 *
 * @example Upload a file
 * ```ts ignore
 * import { putFile } from "./send_file.ts";
 * import { localError, localReader } from "./local_io.ts";
import type { SessionIo } from "./session_io.ts";
 * declare const io: SessionIo;
 * await putFile(io, { local: "a.txt", remote: "docs/a.txt" }, {});
 * ```
 */
export async function putFile(
  io: SessionIo,
  paths: { local: string; remote: string },
  options: TransferOptions,
): Promise<TransferResult> {
  const since = performance.now();
  // An appending upload starts from the server's own file, never from a
  // kept part (the two flags exclude each other).
  let append = options.append ?? false;
  const resume = !append && (options.resume ?? true);
  let source: LocalSource;
  try {
    source = await openLocalSource(paths.local);
  } catch (error) {
    throw io.keep(error);
  }
  using _ = source;
  for (let restarted = false;; restarted = true) {
    await io.send([putRequest(source, paths.remote, {
      overwrite: options.overwrite ?? false,
      resume,
      append,
    })]);
    const { offset } = await io.expect("ready");
    const digest = await sendFile(io, source, offset, {
      ...options,
      resume: resume || append,
    });
    try {
      await io.expect("ok");
    } catch (error) {
      if (
        error instanceof FerryError && error.code === "INTEGRITY" &&
        offset > 0 && !restarted
      ) {
        // The server's part (or, appending, its file) held other bytes;
        // it has kept nothing: the whole file goes again.
        options.onRestart?.(
          append
            ? "the server's file was not the start of this one"
            : "the server's partial upload did not match",
        );
        append = false;
        continue;
      }
      throw error;
    }
    return {
      ...transferResult(paths.remote, source.size, {
        algorithm: io.digest,
        digest,
        start: since,
      }),
      resumedFrom: offset,
      restarted,
    };
  }
}
