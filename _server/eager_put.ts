/**
 * The server's eager `PUT`s in strict mode (see `protocol.ts` and
 * `_server/dir_handle.ts`): a client uploading many small files sends each
 * one's `PUT`, bytes and `HASH` without waiting, and the server takes them
 * in runs.
 *
 * Each upload is checked (path, limits), its bytes copied into the run's
 * buffer and its digest checked; nothing touches the file system yet. The
 * run ends when the next request is not an eager `PUT`, or not wholly
 * arrived (the server would wait for the client), or when it holds
 * {@linkcode MAX_RUN} uploads or {@linkcode RUN_BYTES} bytes. Then it is
 * placed (`_server/eager_place.ts`: each file written into a fresh
 * temporary through folders held open from the root, one `syncfs` per file
 * system for the run, each temporary moved into place, so a file appears
 * whole or not at all); while its `syncfs` runs on a thread of its own the
 * next run is received: at most one run per connection is being placed and
 * one received. The replies of a run go out in request order once it is
 * placed, before any other request of the connection is answered.
 *
 * @module
 */

import * as nodePath from "node:path";
import { createHasher, digestNow, digestOf } from "../_common/digest.ts";
import { digestLengthRefusal, digestRefusal } from "./claimed_digest.ts";
import { splitWirePath } from "../_common/wire_path.ts";
import type { EntryStatus } from "./dir_handle.ts";
import {
  emit,
  type RequestState,
  type ServerContext,
  type Session,
} from "./context.ts";
import { checkRequestLimits } from "./limits.ts";
import { RACY_MARGIN_MS } from "./hash_cache.ts";
import { refuseTempName } from "./temp.ts";
import { SMALL_FILE_BYTES } from "./small_get.ts";
import {
  type PlaceJob,
  type PlaceOutcome,
  placeRun,
  TempNames,
} from "./eager_place.ts";
import type { Libc } from "./dir_handle.ts";
import { FerryError } from "../errors.ts";
import {
  type DigestAlgorithm,
  encodeMessage,
  FRAME_HEADER_BYTES,
  FRAME_TYPES,
  MAX_DIGEST_BYTES,
  type PutMessage,
} from "../protocol.ts";

/** Most uploads held in one run before they are synced and placed. */
export const MAX_RUN = 128;

/**
 * Most bytes of uploads held in one run: 1 MiB (`MAX_EAGER_PUT_BYTES`, so
 * any eager upload fits a run of its own). A connection holds at most two
 * such buffers: the run it receives and the one being placed.
 */
export const RUN_BYTES = 1024 * 1024;

/** The run buffer's first size; it doubles as uploads need, to RUN_BYTES. */
const FIRST_RUN_BYTES = 64 * 1024;

/** One eager `PUT` of the run: received and checked, or refused. */
interface Entry {
  message: PutMessage;
  time: Date;
  started: number;
  /** Why it is refused, if it is. */
  error?: FerryError;
  /** What the placer does with it, once its digest checked out. */
  job?: PlaceJob;
  /** Its digest and the session's algorithm (for the hash cache). */
  digest?: Uint8Array;
  algorithm?: DigestAlgorithm;
}

/**
 * The eager `PUT`s of one connection not yet answered: the run being
 * received, and the run being placed.
 */
export class EagerRun {
  #libc: Libc;
  #names = new TempNames();
  #entries: Entry[] = [];
  /** The bytes of the run being received, and how much of it is used. */
  #buffer: Uint8Array<ArrayBuffer> | undefined;
  #used = 0;
  /** The buffer the last placed run gave back, for the next. */
  #spare: ArrayBuffer | undefined;
  /** The run being placed: settles once its replies are queued. */
  #placing: Promise<void> | undefined;

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

  /** Whether a run is being placed (its replies are not queued yet). */
  get placing(): boolean {
    return this.#placing !== undefined;
  }

  /**
   * Receives one eager `PUT`: its bytes into the run's buffer (or nowhere,
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
    let job: PlaceJob | undefined;
    try {
      job = checkUpload(context, message);
    } catch (error) {
      entry.error = error instanceof FerryError
        ? error
        : new FerryError("INTERNAL", "Internal server error", { cause: error });
    }
    if (job !== undefined && this.#used + message.size > RUN_BYTES) {
      await this.post(session, context); // room for it in a fresh run
    }
    state.closeOnError = true;
    const digest = this.#copyNow(session, message.size, job) ??
      await this.#copy(session, message.size, job);
    state.bytes = message.size;
    // The HASH, read in place when it is all there (the usual case).
    const reader = session.reader;
    const length = bufferedHashLength(reader.bufferedBytes());
    let claimed: Uint8Array;
    if (length > 0) {
      claimed = reader.bufferedBytes().subarray(
        FRAME_HEADER_BYTES,
        FRAME_HEADER_BYTES + length,
      );
    } else {
      const reply = await reader.readMessage();
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
      claimed = reply.digest;
    }
    state.closeOnError = false;
    const checked = job !== undefined && digest !== undefined
      ? check(session, message, digest, claimed)
      : undefined;
    if (length > 0) reader.skip(FRAME_HEADER_BYTES + length);
    if (checked !== undefined && job !== undefined) {
      if (checked instanceof FerryError) entry.error = checked;
      else {
        entry.digest = checked;
        entry.algorithm = session.digest;
        job.offset = this.#used;
        this.#used += job.size;
        job.identity = context.hashCache !== undefined &&
          job.size > SMALL_FILE_BYTES && job.mtime !== undefined &&
          Date.now() - job.mtime >= RACY_MARGIN_MS;
        entry.job = job;
      }
    }
    this.#entries.push(entry);
  }

  /**
   * Ends the run being received: once the run before it is placed (and its
   * replies queued), starts placing it and returns while its `syncfs`
   * runs.
   * When it is placed, its replies are queued with the session's held
   * replies (and written at once if nothing more is buffered to read).
   */
  async post(session: Session, context: ServerContext): Promise<void> {
    if (this.#entries.length === 0) return;
    await this.#placing;
    const entries = this.#entries;
    this.#entries = [];
    const jobs: PlaceJob[] = [];
    for (const entry of entries) if (entry.job) jobs.push(entry.job);
    if (jobs.length === 0) {
      await this.#answer(session, context, entries, []);
      return;
    }
    const buffer = this.#buffer!.buffer;
    this.#buffer = undefined;
    this.#used = 0;
    const placed = placeRun(
      this.#libc,
      context.realRoot,
      jobs,
      new Uint8Array(buffer),
      this.#names,
    );
    // Never rejects: nothing may await it before it settles (an unhandled
    // rejection would end the server), and settle() must not throw.
    this.#placing = (async () => {
      const outcomes = await placed.catch((): PlaceOutcome[] =>
        jobs.map(() => ({ code: "INTERNAL", message: "Upload not placed" }))
      );
      this.#spare = buffer;
      try {
        await this.#answer(session, context, entries, outcomes);
        // The loop may be waiting for the client, which waits for these.
        if (!session.reader.frameBuffered) await session.replies.flush();
      } catch {
        // The peer left (a reply could not be written): the next read of
        // the connection ends the session.
      }
    })().finally(() => this.#placing = undefined);
  }

  /**
   * Places what was received and waits until every run's replies are
   * queued. Never throws.
   *
   * @param release Also drop the run buffers (nothing more is pipelined).
   */
  async settle(
    session: Session,
    context: ServerContext,
    release = false,
  ): Promise<void> {
    await this.post(session, context);
    await this.#placing;
    if (release) {
      this.#spare = undefined;
      if (this.#used === 0) this.#buffer = undefined;
    }
  }

  /** Emits each entry's log event and queues its reply, in order. */
  async #answer(
    session: Session,
    context: ServerContext,
    entries: Entry[],
    outcomes: PlaceOutcome[],
  ): Promise<void> {
    let next = 0;
    for (const entry of entries) {
      let error = entry.error;
      if (entry.job !== undefined) {
        const outcome = outcomes[next++];
        if (outcome?.code !== undefined) {
          error = new FerryError(outcome.code, outcome.message ?? "");
        } else if (outcome?.placed !== undefined) {
          remember(context, entry, outcome.placed);
        }
      }
      emit(context, {
        protocol: "ferry",
        request: "PUT",
        path: entry.message.path,
        bytes: error === undefined ? entry.message.size : 0,
        result: error?.code ?? "ok",
        peer: session.peer,
        time: entry.time,
        started: entry.started,
      });
      // Held with the session's other replies, written before it waits.
      await session.replies.queue(
        error === undefined ? OK_FRAME : encodeMessage({
          type: "error",
          code: error.code,
          message: error.message.slice(0, 1000),
        }),
      ).catch(() => {
        // The peer left: the next read of the connection ends the session.
      });
    }
  }

  /**
   * Copies the upload's `size` raw bytes into the run's buffer for `job`
   * and returns their digest when they have all arrived and the digest is
   * at hand (the usual case: no promise, no turn of the event loop per
   * upload); else does nothing and returns `undefined`.
   */
  #copyNow(
    session: Session,
    size: number,
    job: PlaceJob | undefined,
  ): Uint8Array | undefined {
    const reader = session.reader;
    if (job === undefined || reader.buffered < size) return undefined;
    const bytes = reader.bufferedBytes().subarray(0, size);
    const digest = digestNow(session.digest, bytes);
    if (digest === undefined) return undefined;
    this.#room(size).set(bytes);
    reader.skip(size);
    return digest;
  }

  /**
   * Reads the upload's `size` raw bytes: into the run's buffer for `job`, or
   * dropped for a refusal (no `job`). Returns their digest, unless
   * refused.
   */
  async #copy(
    session: Session,
    size: number,
    job: PlaceJob | undefined,
  ): Promise<Uint8Array | undefined> {
    const reader = session.reader;
    if (job === undefined) {
      // Refused: read past the bytes.
      const buffer = session.bulkBuffers(size)[0];
      try {
        for (let left = size; left > 0;) {
          const n = await reader.read(
            buffer.subarray(0, Math.min(left, buffer.length)),
          );
          if (n === null) {
            throw new FerryError("CONNECTION", "Upload cut short");
          }
          left -= n;
        }
      } finally {
        session.releaseBuffers(true);
      }
      return undefined;
    }
    const into = this.#room(size);
    if (reader.buffered >= size) {
      // Arrived whole (the usual case): copied and hashed in one piece
      // from the read buffer.
      const bytes = reader.bufferedBytes().subarray(0, size);
      into.set(bytes);
      const digest = await digestOf(session.digest, bytes);
      reader.skip(size);
      return digest;
    }
    const hash = await createHasher(session.digest);
    for (let at = 0; at < size;) {
      const n = await reader.read(into.subarray(at));
      if (n === null) throw new FerryError("CONNECTION", "Upload cut short");
      hash.update(into.subarray(at, at + n));
      at += n;
    }
    return hash.digest();
  }

  /**
   * Where the next `size` bytes of the run go (the run's buffer grows,
   * doubling, up to {@linkcode RUN_BYTES}).
   */
  #room(size: number): Uint8Array<ArrayBuffer> {
    const need = this.#used + size;
    let buffer = this.#buffer;
    if (buffer === undefined || buffer.length < need) {
      let length = Math.max(buffer?.length ?? 0, FIRST_RUN_BYTES);
      while (length < need) length *= 2;
      length = Math.min(length, RUN_BYTES);
      const spare = this.#spare;
      this.#spare = undefined;
      const grown = spare !== undefined && spare.byteLength >= length
        ? new Uint8Array(spare)
        : new Uint8Array(length);
      if (buffer !== undefined) grown.set(buffer.subarray(0, this.#used));
      this.#buffer = buffer = grown;
    }
    return buffer.subarray(this.#used, need);
  }
}

/**
 * Checks an eager upload's target by the lexical rules and limits; returns
 * what the placer needs.
 */
function checkUpload(context: ServerContext, message: PutMessage): PlaceJob {
  if (!context.allowUpload) {
    throw new FerryError("FORBIDDEN", "Uploads are not allowed");
  }
  checkRequestLimits(message, context.limits);
  const path = message.path;
  const segments = splitWirePath(path);
  const name = segments.at(-1);
  if (name === undefined) {
    throw new FerryError("FORBIDDEN", "Cannot write the root folder");
  }
  refuseTempName(segments, path);
  return {
    path,
    folder: path.slice(0, Math.max(0, path.length - name.length - 1)),
    name,
    offset: 0,
    size: message.size,
    mtime: message.mtime,
    overwrite: message.overwrite,
    identity: false,
  };
}

/** Remembers the digest of a placed upload that is still ours. */
function remember(
  context: ServerContext,
  entry: Entry,
  placed: EntryStatus,
): void {
  const job = entry.job!;
  context.hashCache?.store(
    nodePath.join(context.realRoot, ...splitWirePath(job.path)),
    fileInfoOf(placed),
    entry.algorithm!,
    entry.digest!,
    Date.now(),
    { upload: true },
  );
}

const OK_FRAME = encodeMessage({ type: "ok" });

/**
 * The digest length of a whole `HASH` frame at the start of `bytes`, or 0
 * if there is none (not all there, another frame, or a length that
 * `decodeFrame` would refuse: the caller then reads it the usual way).
 */
function bufferedHashLength(bytes: Uint8Array): number {
  if (bytes.length < FRAME_HEADER_BYTES || bytes[0] !== FRAME_TYPES.hash) {
    return 0;
  }
  if (bytes[1] !== 0 || bytes[2] !== 0 || bytes[3] !== 0) return 0;
  const length = bytes[4];
  if (length < 1 || length > MAX_DIGEST_BYTES) return 0;
  return bytes.length >= FRAME_HEADER_BYTES + length ? length : 0;
}

/**
 * Checks the digest's length and the digest itself; returns
 * the digest, or the refusal.
 */
function check(
  session: Session,
  message: PutMessage,
  digest: Uint8Array,
  claimed: Uint8Array,
): Uint8Array | FerryError {
  return digestLengthRefusal(session.digest, claimed) ??
    digestRefusal(session.digest, message.path, digest, claimed) ?? digest;
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
