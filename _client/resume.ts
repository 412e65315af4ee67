/**
 * Resumable transfers, the client's side: a download that continues from
 * the `DEST.part` an earlier, cut download left behind, and an upload that
 * continues from the part the server kept.
 *
 * A download to `DEST` keeps two files until it succeeds: `DEST.part`, the
 * bytes so far, and `DEST.part.ferry`, a small JSON record of where they
 * come from (server, remote path, size and modification time), written
 * before the first byte. The next download of the same remote path asks the
 * server for the file's current size and time (`STAT`); when they match
 * the record and the part is not longer than the file, the part is hashed
 * locally and the download continues at its length (`GET path offset`).
 * Otherwise (the remote file changed, the part is from another file, is
 * longer than the file or has no record) the download starts over, once,
 * and says so. The whole-file SHA-256 is checked at the end either way; if
 * a resumed download fails that check, it starts over once more from 0.
 *
 * An upload sends the resume flag; the server answers `READY offset` with
 * the length of its part of this very upload (see `_server/upload_part.ts`). The
 * client hashes its own first `offset` bytes and sends the rest. If the
 * server then reports `INTEGRITY` (its part held other bytes; it has
 * removed it), the upload starts over once from 0.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { copyHashed } from "../_common/copy.ts";
import { expectData, receiveVerified } from "./receive.ts";
import { messageOf } from "../_common/text.ts";
import { refuseLinkSync } from "./receiver.ts";
import {
  type TransferOptions,
  type TransferResult,
  transferResult,
} from "./types.ts";
import type { SessionIo } from "./session_io.ts";
import { FerryError } from "../errors.ts";
import type { ByteReader, ByteWriter } from "../protocol.ts";

/** Suffix of the record kept beside `DEST.part`: `DEST.part.ferry`. */
export const RECORD_SUFFIX = ".part.ferry";

/** What `DEST.part.ferry` holds: where the bytes of `DEST.part` come from. */
export interface PartRecord {
  /** Format version, 1. */
  version: 1;
  /** The server, `host:port`. */
  server: string;
  /** The remote path. */
  path: string;
  /** The remote file's size when the download started. */
  size: number;
  /** Its modification time then, milliseconds. */
  mtime: number;
}

/**
 * Path of the record beside a download's part.
 *
 * @param destination The download's destination.
 * @returns `destination + ".part.ferry"`.
 */
export function recordPath(destination: string): string {
  return destination + RECORD_SUFFIX;
}

/**
 * Reads the record of a download's part.
 *
 * @param destination The download's destination.
 * @returns The record, or `undefined` when there is none or it is unreadable.
 */
export async function readPartRecord(
  destination: string,
): Promise<PartRecord | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(recordPath(destination));
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text);
    if (
      value?.version === 1 && typeof value.server === "string" &&
      typeof value.path === "string" && Number.isSafeInteger(value.size) &&
      Number.isSafeInteger(value.mtime)
    ) {
      return value as PartRecord;
    }
  } catch {
    // Not JSON: no usable record.
  }
  return undefined;
}

/**
 * Removes the record of a download's part, if any.
 *
 * @param destination The download's destination.
 * @returns A promise that settles once it is gone.
 */
export async function removePartRecord(destination: string): Promise<void> {
  await Deno.remove(recordPath(destination)).catch(() => {});
}

async function writePartRecord(
  destination: string,
  record: PartRecord,
): Promise<void> {
  try {
    // Replaced, never written through a symbolic link: created exclusively.
    await removePartRecord(destination);
    await Deno.writeTextFile(
      recordPath(destination),
      JSON.stringify(record) + "\n",
      { createNew: true },
    );
  } catch (error) {
    throw new FerryError(
      "LOCAL",
      `Cannot write ${recordPath(destination)}: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

/** Refuses an existing destination (without overwrite) or a folder. */
async function checkDestination(
  destination: string,
  overwrite: boolean,
): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(destination);
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

/** Length of a regular file, or undefined when there is none. */
async function fileLength(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.lstat(path);
    return info.isFile ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** Wraps local I/O errors of `path` as `LOCAL`. */
function localError(action: string, path: string, error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  return new FerryError(
    "LOCAL",
    `Cannot ${action} ${path}: ${messageOf(error)}`,
    { cause: error },
  );
}

/**
 * A reader over a local file whose errors become `LOCAL`.
 *
 * @param file The open file.
 * @param path Its path, for the message.
 * @returns The reader.
 * @throws {FerryError} `LOCAL` from `read()` if the file cannot be read.
 *
 * @example Read a local file
 * ```ts ignore
 * import { localReader } from "./resume.ts";
 * using file = await Deno.open("notes.txt");
 * const n = await localReader(file, "notes.txt").read(new Uint8Array(64));
 * ```
 */
export function localReader(file: Deno.FsFile, path: string): ByteReader {
  return {
    async read(p: Uint8Array): Promise<number | null> {
      try {
        return await file.read(p);
      } catch (error) {
        throw localError("read", path, error);
      }
    },
  };
}

function localWriter(file: Deno.FsFile, path: string): ByteWriter {
  async function write(p: Uint8Array): Promise<number> {
    try {
      return await file.write(p);
    } catch (error) {
      throw localError("write", path, error);
    }
  }
  return {
    write(p: Uint8Array): Promise<number> {
      const writing = write(p);
      writing.catch(() => {});
      return writing;
    },
  };
}

/** Where a download starts: at `offset`, or over (with the reason). */
interface Plan {
  offset: number;
  restartReason?: string;
}

/** Decides whether a download can continue from the part on disk. */
async function planGet(
  io: SessionIo,
  path: string,
  destination: string,
): Promise<Plan> {
  const part = destination + ".part";
  const length = await fileLength(part);
  if (length === undefined || length === 0) return { offset: 0 };
  const record = await readPartRecord(destination);
  if (record === undefined) {
    return { offset: 0, restartReason: `${part} has no record of its source` };
  }
  if (record.path !== path) {
    return {
      offset: 0,
      restartReason: `${part} is part of another file (${record.path})`,
    };
  }
  await io.send([{ type: "stat", path }]);
  const entry = (await io.expect("info")).entry;
  if (entry.kind !== "file") return { offset: 0 }; // GET will say why
  if (entry.size !== record.size || entry.mtime !== record.mtime) {
    return { offset: 0, restartReason: "remote file changed" };
  }
  if (length > entry.size) {
    return {
      offset: 0,
      restartReason: `${part} is longer than the remote file`,
    };
  }
  return { offset: length };
}

/**
 * Downloads `path` into the local file `destination`, continuing from an
 * earlier download's `DEST.part` when its record shows it is a piece of the
 * same version of the same file.
 *
 * @param io The session.
 * @param server The server's `host:port`, kept in the record.
 * @param path The remote file.
 * @param destination The local file.
 * @param options `overwrite`, `onProgress` (bytes of the whole file),
 * `onResume`, `onRestart`.
 * @returns What was transferred, with `resumedFrom` and `restarted`.
 * @throws {FerryError} As {@linkcode ./client.ts FerryClient.get}.
 */
export async function resumableGet(
  io: SessionIo,
  server: string,
  path: string,
  destination: string,
  options: TransferOptions,
): Promise<TransferResult> {
  const start = performance.now();
  if (destination === "") throw new TypeError("Destination must not be empty");
  try {
    await checkDestination(destination, options.overwrite ?? false);
    // Neither the part nor its record is written through a symbolic link.
    refuseLinkSync(destination + ".part");
    refuseLinkSync(recordPath(destination));
  } catch (error) {
    throw io.keep(error);
  }
  const part = destination + ".part";
  const plan = await planGet(io, path, destination);
  let offset = plan.offset;
  let restarted = false;
  const existed = (await fileLength(part)) !== undefined;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(part, { read: true, write: true, create: true });
  } catch (error) {
    throw io.keep(localError("create", part, error));
  }
  try {
    // The file opened is the one named `part`, not a link made meanwhile.
    const opened = await file.stat();
    const named = await Deno.lstat(part);
    if (named.isSymlink || opened.ino !== named.ino) {
      throw new FerryError(
        "FORBIDDEN",
        `Refused to write through a symbolic link: ${part}`,
      );
    }
  } catch (error) {
    file.close();
    throw io.keep(localError("open", part, error));
  }
  // What to do with the part if this download fails: keep it (a cut: the
  // next download continues), leave it as it was (a refusal before any
  // byte), or remove it with its record (a mix that cannot be continued).
  let outcome: "keep" | "untouched" | "remove" = "untouched";
  let done = false;
  try {
    let hash = await hashPrefix(file, part, offset, io);
    if (hash.offset < offset) offset = hash.offset; // shrank meanwhile
    while (true) {
      await io.send([{ type: "get", path, offset }]);
      const data = await expectData(io, offset);
      const size = data.size;
      outcome = "keep";
      if (offset === 0) {
        if (plan.restartReason !== undefined && !restarted) {
          restarted = true;
          options.onRestart?.(plan.restartReason);
        }
        await truncate(file, part);
        await writePartRecord(destination, {
          version: 1,
          server,
          path,
          size,
          mtime: data.mtime,
        });
      } else {
        options.onResume?.(offset, size);
      }
      const from = offset;
      let digest: Uint8Array;
      let mismatch = false;
      try {
        digest = await receiveVerified(io, localWriter(file, part), {
          size,
          offset,
          hash: hash.hash,
          onProgress: options.onProgress,
          onMismatch: () => mismatch = true,
        });
      } catch (error) {
        // CHANGED: the bytes are a mix of versions, not worth keeping;
        // INTEGRITY likewise. A cut keeps them.
        if (io.recoverable(error)) outcome = "remove";
        if (mismatch && offset > 0 && !restarted) {
          restarted = true;
          options.onRestart?.(`${part} did not match the remote file`);
          offset = 0;
          hash = { hash: createHash("sha256"), offset: 0 };
          continue; // the server sends the whole file again
        }
        throw error;
      }
      try {
        const time = new Date(data.mtime);
        await file.utime(time, time);
        file.close();
        done = true;
        await Deno.rename(part, destination);
      } catch (error) {
        outcome = "remove";
        throw io.keep(
          localError(`move ${part} to`, destination, error),
        );
      }
      await removePartRecord(destination);
      return {
        ...transferResult(path, size, digest, start),
        resumedFrom: from,
        restarted,
      };
    }
  } catch (error) {
    if (!done) {
      done = true;
      file.close();
    }
    if (outcome === "remove" || (outcome === "untouched" && !existed)) {
      await Deno.remove(part).catch(() => {});
      if (outcome === "remove") await removePartRecord(destination);
    }
    throw error;
  }
}

/** Hashes the first `offset` bytes of the part, leaving it positioned. */
async function hashPrefix(
  file: Deno.FsFile,
  part: string,
  offset: number,
  io: SessionIo,
): Promise<{ hash: Hash; offset: number }> {
  const hash = createHash("sha256");
  if (offset === 0) return { hash, offset };
  let hashed: number;
  try {
    hashed = await copyHashed(
      localReader(file, part),
      undefined,
      offset,
      hash,
      io.buffers(),
    );
  } catch (error) {
    throw io.keep(error);
  }
  if (hashed < offset) {
    await truncate(file, part);
    return { hash: createHash("sha256"), offset: 0 };
  }
  return { hash, offset };
}

async function truncate(file: Deno.FsFile, part: string): Promise<void> {
  try {
    // An empty part is left alone: truncating a file to 0 bytes makes ext4
    // (auto_da_alloc) flush everything written after it when the file is
    // closed, which made closing a fresh 1 GiB download take 0.4 s.
    if ((await file.stat()).size > 0) await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
  } catch (error) {
    throw localError("truncate", part, error);
  }
}

/**
 * Uploads the local file `localPath` to `remotePath`; with `resume` (the
 * default) the server may answer that it already holds the first bytes of
 * this very upload, and only the rest is sent.
 *
 * @param io The session.
 * @param localPath The local file.
 * @param remotePath The remote path.
 * @param options `overwrite`, `resume`, `onProgress` (bytes of the whole
 * file), `onResume`, `onRestart`.
 * @returns What was transferred, with `resumedFrom` and `restarted`.
 * @throws {FerryError} As {@linkcode ./client.ts FerryClient.put}.
 */
export async function resumablePut(
  io: SessionIo,
  localPath: string,
  remotePath: string,
  options: TransferOptions,
): Promise<TransferResult> {
  const start = performance.now();
  const resume = options.resume ?? true;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(localPath, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw io.keep(
        new FerryError("LOCAL", `Local file not found: ${localPath}`),
      );
    }
    throw io.keep(localError("open", localPath, error));
  }
  try {
    const before = await file.stat();
    if (!before.isFile) {
      throw io.keep(new FerryError("LOCAL", `Not a file: ${localPath}`));
    }
    const size = before.size;
    const mtime = before.mtime?.getTime();
    const reader = localReader(file, localPath);
    let restarted = false;
    while (true) {
      await io.send([{
        type: "put",
        path: remotePath,
        size,
        overwrite: options.overwrite ?? false,
        resume,
        mtime,
      }]);
      const ready = await io.expect("ready");
      const offset = ready.offset;
      if (offset > size || (offset !== 0 && !resume)) {
        throw new FerryError(
          "PROTOCOL",
          `READY at offset ${offset} for an upload of ${size} bytes${
            resume ? "" : " that does not resume"
          }`,
        );
      }
      const hash = createHash("sha256");
      await file.seek(0, Deno.SeekMode.Start);
      const hashed = offset === 0
        ? 0
        : await copyHashed(reader, undefined, offset, hash, io.buffers());
      if (offset > 0) options.onResume?.(offset, size);
      const onProgress = options.onProgress;
      const moved = hashed < offset ? 0 : await copyHashed(
        reader,
        io.sink,
        size - offset,
        hash,
        io.buffers(),
        onProgress && ((n) => onProgress(offset + n, size)),
      );
      const after = await file.stat();
      if (
        hashed < offset || moved < size - offset || after.size !== size ||
        after.mtime?.getTime() !== mtime
      ) {
        // The server has (or waits for) bytes of no consistent file: the
        // session is closed without a HASH, so the server keeps nothing.
        throw new FerryError(
          "CHANGED",
          `Local file changed while it was sent: ${localPath}`,
        );
      }
      const digest = new Uint8Array(hash.digest());
      await io.send([{ type: "hash", sha256: digest }]);
      try {
        await io.expect("ok");
      } catch (error) {
        if (
          error instanceof FerryError && error.code === "INTEGRITY" &&
          offset > 0 && !restarted
        ) {
          // The server's part held other bytes; it has dropped it.
          restarted = true;
          options.onRestart?.("the server's partial upload did not match");
          continue;
        }
        throw error;
      }
      return {
        ...transferResult(remotePath, size, digest, start),
        resumedFrom: offset,
        restarted,
      };
    }
  } finally {
    file.close();
  }
}
