/**
 * Resumable downloads, the client's side: a download that continues from
 * the `DEST.part` an earlier, cut download left behind. (Resumed uploads are
 * in `_client/send_file.ts`.)
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
 * and says so. The whole-file digest is checked at the end either way; if
 * a resumed download fails that check, it starts over once more from 0.
 *
 * The part is a {@linkcode Receiver}: the bytes reach it through the same
 * `receiveFile` (`_client/receive.ts`) as every other download.
 *
 * @module
 */

import { createHasher, type Hasher } from "../_common/digest.ts";
import { copyHashed } from "../_common/copy.ts";
import { localError, localReader, localWriter } from "./local_io.ts";
import { getFile } from "./receive.ts";
import {
  type Receiver,
  refuseDestinationSync,
  refuseLinkSync,
} from "./receiver.ts";
import type { TransferOptions, TransferResult } from "./types.ts";
import type { SessionIo } from "./session_io.ts";
import { FerryError } from "../errors.ts";
import type { DataMessage } from "../protocol.ts";

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

/**
 * Writes the record of a download's part (replacing any, never through a
 * symbolic link).
 *
 * @param destination The download's destination.
 * @param record Where the part's bytes come from.
 * @returns A promise that settles once it is written.
 * @throws {FerryError} `LOCAL` if it cannot be written.
 */
export async function writePartRecord(
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
    throw localError("write", recordPath(destination), error);
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

/** A resumable download: which file, from which server, to where. */
export interface ResumableTarget {
  /** The server's `host:port`, kept in the record. */
  server: string;
  /** The remote file. */
  path: string;
  /** The local file. */
  destination: string;
}

/**
 * Downloads `path` into the local file `destination`, continuing from an
 * earlier download's `DEST.part` when its record shows it is a piece of the
 * same version of the same file. If the whole file's digest then differs,
 * the download starts over once from 0.
 *
 * @param io The session.
 * @param target The server, the remote file and the local file.
 * @param options `overwrite`, `onProgress` (bytes of the whole file),
 * `onResume`, `onRestart`.
 * @returns What was transferred, with `resumedFrom` and `restarted`.
 * @throws {FerryError} As {@linkcode ./client.ts FerryClient.get}.
 */
export async function resumableGet(
  io: SessionIo,
  target: ResumableTarget,
  options: TransferOptions,
): Promise<TransferResult> {
  const since = performance.now();
  const { path, destination } = target;
  if (destination === "") throw new TypeError("Destination must not be empty");
  try {
    refuseDestinationSync(destination, options.overwrite ?? false);
    // Neither the part nor its record is written through a symbolic link.
    refuseLinkSync(destination + ".part");
    refuseLinkSync(recordPath(destination));
  } catch (error) {
    throw io.keep(error);
  }
  const plan = await planGet(io, path, destination);
  const receive = { path, onProgress: options.onProgress, since };
  const receiver = await openPart(io, target, { ...options, ...plan });
  try {
    const result = await getFile(io, receiver, receive);
    return {
      ...result,
      resumedFrom: receiver.offset,
      restarted: receiver.restarted,
    };
  } catch (error) {
    const mismatch = error instanceof FerryError &&
      error.code === "INTEGRITY" && io.recoverable(error);
    if (!mismatch || receiver.offset === 0) throw error;
  }
  // The kept bytes did not belong to the file: the server sends it again.
  options.onRestart?.(`${destination}.part did not match the remote file`);
  const again = await openPart(io, target, { ...options, offset: 0 });
  return {
    ...await getFile(io, again, receive),
    resumedFrom: 0,
    restarted: true,
  };
}

/** {@linkcode Receiver} of the resumable part; `offset` bytes are kept. */
interface PartReceiver extends Receiver {
  readonly offset: number;
  /** Whether `onRestart` was called (the kept bytes were dropped). */
  readonly restarted: boolean;
}

/**
 * Opens `DEST.part` to continue at `offset` (hashing what it holds) or to
 * start over. When `DATA` comes, a fresh start truncates the part and
 * writes its record; a failure after `DATA` keeps the part only when the
 * session broke, and one before leaves it as it was.
 */
async function openPart(
  io: SessionIo,
  target: ResumableTarget,
  options: TransferOptions & Plan,
): Promise<PartReceiver> {
  const { destination } = target;
  const part = destination + ".part";
  const existed = (await fileLength(part)) !== undefined;
  const file = await openPartFile(io, part);
  let prefix: { hash: Hasher; offset: number };
  try {
    prefix = await hashPrefix(file, part, options.offset, io);
  } catch (error) {
    file.close();
    if (!existed) await Deno.remove(part).catch(() => {});
    throw error;
  }
  const { hash, offset } = prefix; // offset is lower if it shrank meanwhile
  let open = true;
  let started = false;
  let restarted = false;
  function close(): void {
    if (open) {
      open = false;
      file.close();
    }
  }
  async function remove(): Promise<void> {
    close();
    await Deno.remove(part).catch(() => {});
    await removePartRecord(destination);
  }
  return {
    offset,
    hash,
    get restarted(): boolean {
      return restarted;
    },
    writer: localWriter(file, part),
    async start(data: DataMessage): Promise<void> {
      started = true;
      if (offset > 0) return options.onResume?.(offset, data.size);
      if (options.restartReason !== undefined) {
        restarted = true;
        options.onRestart?.(options.restartReason);
      }
      await truncate(file, part);
      await writePartRecord(destination, {
        version: 1,
        server: target.server,
        path: target.path,
        size: data.size,
        mtime: data.mtime,
      });
    },
    async commit(mtime = Date.now()): Promise<void> {
      try {
        const time = new Date(mtime);
        await file.utime(time, time);
        close();
        await Deno.rename(part, destination);
      } catch (error) {
        await remove();
        throw localError(`move ${part} to`, destination, error);
      }
      await removePartRecord(destination);
    },
    async discard(keepPart = false): Promise<void> {
      close();
      if (!started) {
        // Refused before any byte: the part stays as it was.
        if (!existed) await Deno.remove(part).catch(() => {});
      } else if (!keepPart) await remove();
    },
  };
}

/** Opens `DEST.part` for reading and writing, proven not a link. */
async function openPartFile(io: SessionIo, part: string): Promise<Deno.FsFile> {
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
  return file;
}

/** Hashes the first `offset` bytes of the part, leaving it positioned. */
async function hashPrefix(
  file: Deno.FsFile,
  part: string,
  offset: number,
  io: SessionIo,
): Promise<{ hash: Hasher; offset: number }> {
  const hash = await createHasher(io.digest);
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
    return { hash: await createHasher(io.digest), offset: 0 };
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
