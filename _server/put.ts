/**
 * The server's `PUT` handler: receives an upload into a temporary file in
 * the target folder (or the part of a resumable upload, see
 * `_server/upload_part.ts`), checks its digest (in the session's algorithm)
 * and only then moves it into place.
 * An appending `PUT` starts its temporary file with a copy of the file now
 * at the target (see `protocol.ts`), so only the new bytes cross the wire.
 *
 * @module
 */

import * as nodePath from "node:path";
import { copyHashed } from "../_common/copy.ts";
import { createHasher, type Hasher } from "../_common/digest.ts";
import { digestLengthRefusal, digestRefusal } from "./claimed_digest.ts";
import {
  checkOpened,
  removeOpened,
  resolveExistingSync,
  resolveTarget,
  type UploadTarget,
} from "./path_jail.ts";
import { sameVersion } from "./hash_cache.ts";
import { openResolvedFile } from "./open_file.ts";
import { untilClosed } from "./until_closed.ts";
import { checkRequestLimits } from "./limits.ts";
import type { HostFile } from "./host_file.ts";
import { createTemporary, removeAt } from "./file_in_folder.ts";
import {
  AT_SYMLINK_NOFOLLOW,
  inFolder,
  type Libc,
  strictLibc,
} from "./dir_handle.ts";
import type { KeptPart } from "./kept_parts.ts";
import {
  emit,
  label,
  mtimeOf,
  type RequestState,
  type ServerContext,
  type Session,
} from "./context.ts";
import { UploadSink } from "./upload_sink.ts";
import { refuseTempName, tempName } from "./temp.ts";
import { leasePathOf, UploadLease } from "./upload_lease.ts";
import {
  openResumablePart,
  resumablePartName,
  TrackedWriter,
} from "./upload_part.ts";
import { FerryError } from "../errors.ts";
import {
  type DigestAlgorithm,
  encodeMessage,
  type PutMessage,
  writeAll,
} from "../protocol.ts";

/** One `PUT` request: who asked, what for, and where it goes. */
interface PutRequest {
  session: Session;
  context: ServerContext;
  message: PutMessage;
  state: RequestState;
  target: UploadTarget;
}

/**
 * How far an upload got: `open` (temporary ready, nothing read yet),
 * `receiving` (raw bytes or the `HASH` frame on their way: a cut keeps a
 * resumable part), `received` (the client's frame read), `closed` (bytes
 * synced and the file closed), `placed` (moved to its final name).
 */
type UploadPhase = "open" | "receiving" | "received" | "closed" | "placed";

/** The state of one upload, in place of loose flags. */
interface Upload {
  /** The temporary file (or resumable part) the bytes go to. */
  tempPath: string;
  file: HostFile;
  /** Bytes already in the file before the client's raw bytes. */
  offset: number;
  hash: Hasher;
  /** Whether this request made the file (a resumed part may be older). */
  created: boolean;
  /** The part's lease across servers (resumable uploads only). */
  lease?: UploadLease;
  /** Gives up the part's claim and lease; `undefined` once done or if none. */
  release?: () => Promise<void>;
  phase: UploadPhase;
}

/**
 * Answers `PUT`: `READY offset`, the raw bytes into a temporary (or the
 * resumable part), the client's `HASH` checked, then the file moved into
 * place and `OK`.
 */
export async function handlePut(
  session: Session,
  context: ServerContext,
  message: PutMessage,
  state: RequestState,
): Promise<void> {
  let put: PutRequest;
  let upload: Upload;
  try {
    if (message.eager) checkRequestLimits(message, context.limits);
    const target = await checkTarget(context, message);
    await context.uploadParts.sweep(target.folder);
    put = { session, context, message, state, target };
    // A resumable upload goes to a part named after the upload, which a cut
    // keeps and a retry continues (see `_server/upload_part.ts`); any other
    // to a fresh random name.
    upload = message.resume ? await openPart(put) : await openTemporary(put);
    await prepareTemporary(put, upload);
  } catch (error) {
    // An eager upload's bytes are on their way: read past them first.
    if (message.eager) await dropEager(session, message, state);
    throw error;
  }
  // A failed write (disk full, ...) drops the temporary file and the rest
  // of the bytes; the client hears INTERNAL after its HASH.
  const sink = new UploadSink(upload.file, upload.tempPath);
  const writer = new TrackedWriter(sink);
  let keepPart = false;
  try {
    const claimed = await receive(put, upload, writer);
    const digest = verify(put, upload, sink, claimed);
    await placeVerified(put, upload, sink, digest);
    // The lease goes before OK: a client that hears OK finds no lease left.
    await upload.release?.();
    upload.release = undefined;
    await writeAll(session.conn, encodeMessage({ type: "ok" }));
  } catch (error) {
    keepPart = keepsPart(put, upload, sink, error);
    throw error;
  } finally {
    await writer.settled();
    await cleanUp(put, upload, keepPart);
  }
}

/**
 * Refuses a `PUT` the server does not take: uploads off, a temporary's
 * name, or an existing file without overwrite; returns where it goes.
 */
async function checkTarget(
  context: ServerContext,
  message: PutMessage,
): Promise<UploadTarget> {
  if (!context.allowUpload) {
    throw new FerryError("FORBIDDEN", "Uploads are not allowed");
  }
  const target = await resolveTarget(context.realRoot, message.path);
  refuseTempName(target.segments, message.path);
  if (target.existing && !message.overwrite) {
    throw new FerryError("EXISTS", `Already exists: ${message.path}`);
  }
  return target;
}

/**
 * Opens (or creates) the resumable part of an upload, claimed by this
 * connection and leased across servers sharing the root; what it already
 * holds is hashed before `READY`.
 */
async function openPart(put: PutRequest): Promise<Upload> {
  const { session, context, message, target } = put;
  const tempPath = nodePath.join(
    target.folder,
    resumablePartName(target.hostPath, message.size, message.mtime),
  );
  // One connection of this server, then one server, writes the part.
  const unclaim = await context.uploadParts.claim(
    tempPath,
    () => session.close(),
  );
  let lease: UploadLease | undefined;
  const release = async () => {
    await lease?.release();
    unclaim();
  };
  // One kept part per target: an older one (another size or time) goes.
  await dropParts(
    session,
    context,
    context.keptParts.take(tempPath, target.hostPath),
  );
  try {
    lease = await UploadLease.acquire(tempPath, {
      ...context.lease,
      realRoot: context.realRoot,
      wirePath: message.path,
      signal: session.signal,
      onLost: () => session.close(),
    });
    // The kept part is hashed before READY, while the client waits:
    // notice if it leaves.
    session.watchPeer();
    const { file, offset, hash, created } = await openResumablePart(
      tempPath,
      message.size,
      session.bulkBuffers(message.size),
      {
        algorithm: session.digest,
        signal: session.signal,
        wirePath: message.path,
        realRoot: context.realRoot,
      },
    );
    return {
      tempPath,
      file,
      offset,
      hash,
      created,
      lease,
      release,
      phase: "open",
    };
  } catch (error) {
    await release();
    throw error;
  }
}

/** Creates the fresh temporary file of a one-shot upload. */
async function openTemporary(put: PutRequest): Promise<Upload> {
  const { session, context, message, target } = put;
  const tempPath = nodePath.join(target.folder, tempName());
  const file = await createTemporary(context.realRoot, tempPath, message.path);
  const hash = await createHasher(session.digest);
  return { tempPath, file, offset: 0, hash, created: true, phase: "open" };
}

/**
 * Proves the temporary is inside the root and, for an appending `PUT`,
 * starts it with the file now at the target. On failure what this request
 * created goes, and the part is released.
 */
async function prepareTemporary(
  put: PutRequest,
  upload: Upload,
): Promise<void> {
  const { session, context, message, target } = put;
  const { tempPath, file } = upload;
  try {
    // The folder may have been swapped for a link out of the root since
    // it was resolved: prove the file is inside before writing to it.
    await checkOpened(context.realRoot, tempPath, message.path, file);
    if (
      message.append && target.existing &&
      target.existing.size <= message.size
    ) {
      upload.offset = await copyExisting(
        session,
        context,
        message,
        file,
        upload.hash,
      );
    }
  } catch (error) {
    // What this request created goes, wherever it landed.
    if (upload.created) {
      const libc = strictLibc();
      if (libc === undefined) {
        await removeOpened(context.realRoot, tempPath, file);
      } else removeAt(libc, context.realRoot, tempPath, message.path);
    }
    file.close();
    await upload.release?.();
    throw error;
  }
}

/**
 * Sends `READY`, reads the raw bytes into the temporary, then the client's
 * frame, which must be `HASH`; returns the digest it claims.
 */
async function receive(
  put: PutRequest,
  upload: Upload,
  writer: TrackedWriter,
): Promise<Uint8Array> {
  const { session, message, state } = put;
  const { offset } = upload;
  if (!message.eager) {
    await writeAll(session.conn, encodeMessage({ type: "ready", offset }));
  }
  await session.settleWatch(); // no two reads of the connection at once
  // The client now streams raw bytes: if anything fails before they are
  // all read, the stream is out of step and the connection has to close.
  state.closeOnError = true;
  upload.phase = "receiving";
  const received = await copyHashed(
    session.reader,
    writer,
    message.size - offset,
    upload.hash,
    session.bulkBuffers(message.size),
    (done) => state.bytes = done,
  );
  if (received < message.size - offset) {
    state.silentOnError = true;
    throw new FerryError("CONNECTION", "Upload cut short");
  }
  const reply = await session.reader.readMessage();
  if (reply === null) {
    state.silentOnError = true;
    throw new FerryError("CONNECTION", "Upload cut short before its HASH");
  }
  upload.phase = "received";
  if (reply.type !== "hash") {
    throw new FerryError("BAD_REQUEST", `Expected HASH, got ${label(reply)}`);
  }
  state.closeOnError = false;
  return reply.digest;
}

/**
 * Checks the client's digest against the bytes written (and that they all
 * were written); returns the digest.
 */
function verify(
  put: PutRequest,
  upload: Upload,
  sink: UploadSink,
  claimed: Uint8Array,
): Uint8Array {
  const { session, message } = put;
  const badLength = digestLengthRefusal(session.digest, claimed);
  if (badLength) throw badLength;
  sink.check();
  const digest = upload.hash.digest();
  const wrong = digestRefusal(session.digest, message.path, digest, claimed);
  if (wrong) throw wrong;
  return digest;
}

/**
 * Syncs and closes the verified temporary, sets its time, checks the lease
 * is still held, moves it into place and caches its digest.
 */
async function placeVerified(
  put: PutRequest,
  upload: Upload,
  sink: UploadSink,
  digest: Uint8Array,
): Promise<void> {
  const { session, context, message, target } = put;
  const { tempPath } = upload;
  await sink.sync();
  upload.file.close();
  upload.phase = "closed";
  if (message.mtime !== undefined) {
    await setMtime(context.realRoot, tempPath, message.path, message.mtime);
  }
  if (upload.lease !== undefined && !await upload.lease.held()) {
    throw new FerryError("BUSY", "Upload taken over by another server");
  }
  const ours = await Deno.stat(tempPath);
  await place(tempPath, target.hostPath, message, context.realRoot);
  upload.phase = "placed";
  await cacheUpload(context, target.hostPath, ours, {
    algorithm: session.digest,
    digest,
  });
}

/**
 * Whether a failed upload leaves a resumable part worth keeping: a cut (or
 * a server shutdown) while the bytes come keeps it; a bad frame, a failed
 * write or a failed check drops it.
 */
function keepsPart(
  put: PutRequest,
  upload: Upload,
  sink: UploadSink,
  error: unknown,
): boolean {
  return put.message.resume && upload.phase === "receiving" &&
    !sink.failed &&
    !(error instanceof FerryError && !CUT_CODES.has(error.code));
}

/**
 * After the upload, placed or not: closes the file, removes a temporary
 * neither placed nor kept, releases the part and books a kept one.
 */
async function cleanUp(
  put: PutRequest,
  upload: Upload,
  keepPart: boolean,
): Promise<void> {
  const { session, context, message, state, target } = put;
  const { tempPath, lease } = upload;
  if (upload.phase !== "closed" && upload.phase !== "placed") {
    upload.file.close();
  }
  // A part taken over by another server is that server's to remove.
  if (upload.phase !== "placed" && !keepPart && !lease?.lost) {
    const libc = strictLibc();
    if (libc === undefined) {
      await Deno.remove(tempPath).catch(() => {
        // Already gone: nothing to clean.
      });
    } else removeAt(libc, context.realRoot, tempPath, message.path);
  }
  await upload.release?.();
  if (keepPart && !lease?.lost) {
    await dropParts(
      session,
      context,
      context.keptParts.keep({
        path: tempPath,
        target: target.hostPath,
        wirePath: message.path,
        bytes: upload.offset + state.bytes,
      }),
    );
  }
}

/**
 * Removes kept parts that the bound or a newer upload of the same path
 * pushed out, each logged with `result` `PART_EVICTED`.
 */
async function dropParts(
  session: Session,
  context: ServerContext,
  parts: KeptPart[],
): Promise<void> {
  for (const part of parts) {
    const started = performance.now();
    // Another server sharing the root may have resumed it: its lease says
    // it is being written, and the part is no longer this server's.
    if (await exists(leasePathOf(part.path))) continue;
    await Deno.remove(part.path).catch(() => {
      // Already gone (completed, swept or removed by hand).
    });
    emit(context, {
      protocol: "ferry",
      request: "PUT",
      path: part.wirePath,
      bytes: part.bytes,
      result: "PART_EVICTED",
      peer: session.peer,
      time: new Date(),
      started,
    });
  }
}

/**
 * Copies the file at the target of an appending `PUT` into its temporary
 * file, hashing it into `hash`; returns how many bytes were copied.
 */
async function copyExisting(
  session: Session,
  context: ServerContext,
  message: PutMessage,
  temp: HostFile,
  hash: Hasher,
): Promise<number> {
  const found = resolveExistingSync(context.realRoot, message.path);
  const { file: source, before } = await openResolvedFile(
    context.realRoot,
    found.hostPath,
    message.path,
  );
  try {
    if (before.size > message.size) return 0;
    const copied = await copyHashed(
      untilClosed(source, session.signal),
      temp,
      before.size,
      hash,
      session.bulkBuffers(message.size),
    );
    if (copied < before.size || !sameVersion(before, await source.stat())) {
      throw new FerryError(
        "CHANGED",
        `File changed while it was read: ${message.path}`,
      );
    }
    return copied;
  } finally {
    source.close();
  }
}

/**
 * Reads and drops the bytes and `HASH` of a refused eager `PUT` (at most
 * `MAX_EAGER_PUT_BYTES`), so that the stream stays in step.
 */
async function dropEager(
  session: Session,
  message: PutMessage,
  state: RequestState,
): Promise<void> {
  state.closeOnError = true;
  const buffer = session.bulkBuffers(message.size)[0];
  for (let left = message.size; left > 0;) {
    const n = await session.reader.read(
      buffer.subarray(0, Math.min(left, buffer.length)),
    );
    if (n === null) {
      state.silentOnError = true;
      throw new FerryError("CONNECTION", "Upload cut short");
    }
    left -= n;
  }
  const reply = await session.reader.readMessage();
  if (reply === null) {
    state.silentOnError = true;
    throw new FerryError("CONNECTION", "Upload cut short before its HASH");
  }
  if (reply.type !== "hash") {
    throw new FerryError("BAD_REQUEST", `Expected HASH, got ${label(reply)}`);
  }
  state.closeOnError = false;
}

/** Error codes of a connection that ended early (rather than misbehaved). */
const CUT_CODES: ReadonlySet<string> = new Set([
  "CONNECTION",
  "TRUNCATED",
  "TIMEOUT",
]);

/**
 * Remembers the digest of a file just uploaded, if the file at its place
 * is still the one that was renamed there (the HTTP face's uploads use it
 * too).
 */
export async function cacheUpload(
  context: ServerContext,
  hostPath: string,
  ours: Deno.FileInfo,
  entry: { algorithm: DigestAlgorithm; digest: Uint8Array },
): Promise<void> {
  if (!context.hashCache) return;
  const observedAt = Date.now();
  const placedInfo = await Deno.stat(hostPath).catch(() => undefined);
  if (
    placedInfo && placedInfo.ino === ours.ino && placedInfo.dev === ours.dev &&
    placedInfo.size === ours.size &&
    mtimeOf(placedInfo) === mtimeOf(ours)
  ) {
    context.hashCache.store(
      hostPath,
      placedInfo,
      entry.algorithm,
      entry.digest,
      observedAt,
      { upload: true },
    );
  }
}

/**
 * Moves a verified temporary file to its final name. Without overwrite, a
 * hard link is tried first: it fails atomically if the name was taken in the
 * meantime. File systems without hard links fall back to check and rename.
 * The HTTP face's uploads use it too. In strict mode (given `realRoot`, see
 * `_server/dir_handle.ts`) both names are taken relative to their folder,
 * opened from the root without following any link, so a folder swapped for
 * a link cannot move the file outside the root.
 */
export async function place(
  tempPath: string,
  finalPath: string,
  message: Pick<PutMessage, "path" | "overwrite">,
  realRoot?: string,
): Promise<void> {
  const libc = realRoot === undefined ? undefined : strictLibc();
  if (libc !== undefined && realRoot !== undefined) {
    return placeAt(libc, realRoot, tempPath, finalPath, message);
  }
  if (!message.overwrite) {
    try {
      await Deno.link(tempPath, finalPath);
      await Deno.remove(tempPath);
      return;
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new FerryError("EXISTS", `Already exists: ${message.path}`);
      }
    }
    try {
      await Deno.lstat(finalPath);
      throw new FerryError("EXISTS", `Already exists: ${message.path}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  } else {
    const existing = await Deno.lstat(finalPath).catch(() => undefined);
    if (existing && !existing.isFile && !existing.isSymlink) {
      throw new FerryError("FORBIDDEN", `Target is a folder: ${message.path}`);
    }
  }
  await Deno.rename(tempPath, finalPath);
}

/**
 * Strict mode's {@linkcode place}: `linkat` (no overwrite) or `renameat`
 * relative to the folder of `finalPath`, which holds the temporary too.
 */
function placeAt(
  libc: Libc,
  realRoot: string,
  tempPath: string,
  finalPath: string,
  message: Pick<PutMessage, "path" | "overwrite">,
): void {
  const folder = nodePath.dirname(finalPath);
  if (nodePath.dirname(tempPath) !== folder) {
    // Its folder resolved elsewhere since the temporary was made.
    throw new FerryError(
      "FORBIDDEN",
      `Path changed while it was written: ${message.path}`,
    );
  }
  const temp = nodePath.basename(tempPath);
  const name = nodePath.basename(finalPath);
  inFolder(libc, realRoot, folder, message.path, (fd) => {
    if (!message.overwrite) {
      try {
        libc.linkAt(fd, temp, fd, name);
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) {
          throw new FerryError("EXISTS", `Already exists: ${message.path}`);
        }
        throw movedAway(error, message.path);
      }
      libc.unlinkAt(fd, temp);
      return;
    }
    let existing;
    try {
      existing = libc.statAt(fd, name, AT_SYMLINK_NOFOLLOW);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (existing && !existing.isFile && !existing.isSymlink) {
      throw new FerryError("FORBIDDEN", `Target is a folder: ${message.path}`);
    }
    try {
      libc.renameAt(fd, temp, fd, name);
    } catch (error) {
      throw movedAway(error, message.path);
    }
  });
}

/**
 * The temporary is not in the folder walked to at placement (that folder
 * was swapped since it was made): refused; other errors pass.
 */
function movedAway(error: unknown, wirePath: string): Error {
  if (error instanceof Deno.errors.NotFound) {
    return new FerryError(
      "FORBIDDEN",
      `Path changed while it was written: ${wirePath}`,
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Sets the modification time of the server's temporary file: in strict
 * mode with `utimensat` in its folder opened from the root, else by name.
 */
async function setMtime(
  realRoot: string,
  tempPath: string,
  wirePath: string,
  mtime: number,
): Promise<void> {
  const libc = strictLibc();
  if (libc === undefined) {
    await Deno.utime(tempPath, new Date(), new Date(mtime));
    return;
  }
  inFolder(
    libc,
    realRoot,
    nodePath.dirname(tempPath),
    wirePath,
    (fd) => libc.setMtimeAt(fd, nodePath.basename(tempPath), mtime),
  );
}

/** Whether two byte arrays hold the same bytes. */
/** Whether something (a file, a link) is at `path`. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}
