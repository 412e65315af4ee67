/**
 * The server's `GET` handler: sends a file (or its tail, for a resumed
 * download) with the digest of the whole file (in the session's algorithm), and refuses to vouch for a
 * file that changed while it was sent.
 *
 * @module
 */

import { untilClosed } from "./until_closed.ts";
import { type BulkBuffers, copyHashed } from "../_common/copy.ts";
import { createHasher, type Hasher } from "../_common/digest.ts";
import { sameVersion } from "./hash_cache.ts";
import { type ResolvedPath, resolveExistingSync } from "./path_jail.ts";
import { type OpenedFile, openResolvedFile } from "./open_file.ts";
import {
  mtimeOf,
  type RequestState,
  type ServerContext,
  type Session,
} from "./context.ts";
import { refuseTempName } from "./temp.ts";
import {
  FRAMES_BYTES,
  sendSmallFile,
  sendSmallHeld,
  SMALL_FILE_BYTES,
} from "./small_get.ts";
import { heldFolderOf } from "./small_get_run.ts";
import { FerryError } from "../errors.ts";
import { encodeMessage, type GetMessage, writeAll } from "../protocol.ts";

/** One large `GET` under way: the request and the opened file. */
interface Sending extends OpenedFile {
  session: Session;
  context: ServerContext;
  message: GetMessage;
  state: RequestState;
  hostPath: string;
  /** A cached digest of this very version, if the cache holds one. */
  cached: Uint8Array | undefined;
  /** Hashes the bytes when nothing is cached. */
  hash: Hasher | undefined;
  /** The request's bulk buffers, taken from the pool when first needed. */
  buffers: () => BulkBuffers;
}

/**
 * Answers `GET`: a small file whole in one write (`_server/small_get.ts`), any
 * other as `DATA`, the raw bytes from `offset` and the whole file's `HASH`
 * (from the hash cache when it holds this version).
 */
export async function handleGet(
  session: Session,
  context: ServerContext,
  message: GetMessage,
  state: RequestState,
): Promise<void> {
  if (
    message.offset === 0 && await sendHeld(session, context, message, state)
  ) {
    return;
  }
  const found = resolveFile(context, message);
  if (
    message.offset === 0 && found.info.size <= SMALL_FILE_BYTES &&
    await sendSmall(session, context, message, state, found)
  ) {
    return;
  }
  // Opened, then proven to be the file inside the root (a folder on the
  // path may have been swapped for a link out of it since the check).
  const opened = await openResolvedFile(
    context.realRoot,
    found.hostPath,
    message.path,
  );
  try {
    const sending = await startSending(session, context, message, state, {
      ...opened,
      hostPath: found.hostPath,
    });
    await skipPrefix(sending);
    await sendBytes(sending);
    await sendDigest(sending);
  } finally {
    opened.file.close();
  }
}

/** Resolves the file a `GET` names; refuses temporaries and non-files. */
function resolveFile(
  context: ServerContext,
  message: GetMessage,
): ResolvedPath {
  const found = resolveExistingSync(context.realRoot, message.path);
  refuseTempName(found.segments, message.path);
  if (!found.info.isFile) {
    throw new FerryError("FORBIDDEN", `Not a file: ${message.path}`);
  }
  return found;
}

/**
 * Sends a small file whole by the strict-mode fast path
 * (`sendSmallHeld`); `false` if that path does not apply (no strict mode,
 * or not a plain small file: then the path by name runs).
 */
async function sendHeld(
  session: Session,
  context: ServerContext,
  message: GetMessage,
  state: RequestState,
): Promise<boolean> {
  const held = heldFolderOf(session, context);
  if (held === null) return false;
  const sent = await sendSmallHeld({
    libc: held.libc,
    held: held.folder,
    wirePath: message.path,
    conn: session.replies.held,
    buffers: (bytes) => session.bulkBuffers(bytes),
    algorithm: session.digest,
  });
  if (sent === undefined) return false;
  state.bytes = sent;
  return true;
}

/**
 * Sends a small file whole: opened once, proven inside the root, sent in
 * one write. Returns `false` if it was not sent (then the large path runs).
 */
async function sendSmall(
  session: Session,
  context: ServerContext,
  message: GetMessage,
  state: RequestState,
  found: ResolvedPath,
): Promise<boolean> {
  const sent = await sendSmallFile({
    realRoot: context.realRoot,
    hostPath: found.hostPath,
    wirePath: message.path,
    // Held back while the client has more requests pipelined.
    conn: session.replies.held,
    buffers: session.bulkBuffers(found.info.size + FRAMES_BYTES),
    hashCache: context.hashCache,
    algorithm: session.digest,
  });
  if (sent === undefined) return false;
  state.bytes = sent.bytes;
  if (sent.cached) state.cached = true;
  return true;
}

/**
 * Checks the offset against the opened file's size and looks up a cached
 * digest of this version (else makes a hasher).
 */
async function startSending(
  session: Session,
  context: ServerContext,
  message: GetMessage,
  state: RequestState,
  opened: OpenedFile & { hostPath: string },
): Promise<Sending> {
  const { size } = opened.before;
  const { offset } = message;
  if (offset > size) {
    throw new FerryError(
      "BAD_REQUEST",
      `Offset ${offset} is past the end of ${message.path} (${size} bytes)`,
    );
  }
  // A cached digest of this very version spares hashing: the prefix is
  // skipped, the bytes are only copied (see `_server/hash_cache.ts`).
  const cached = context.hashCache?.lookup(
    opened.hostPath,
    opened.before,
    session.digest,
  );
  // Hashed on Deno's blocking pool while this thread reads and sends
  // (native XXH3): a 1 GiB cache miss took 14-21 % less time, medians of 9
  // interleaved rounds. The client hashes in place: there the thread hop
  // measured slower, with the server on the other core.
  const hash = cached
    ? undefined
    : await createHasher(session.digest, { background: true });
  // Not taken before they are needed: a cached file sent with `sendfile`
  // needs none.
  const buffers = () => session.bulkBuffers(size);
  return {
    ...opened,
    session,
    context,
    message,
    state,
    cached,
    hash,
    buffers,
  };
}

/**
 * Moves to `offset`: a seek when the digest is cached, else the prefix is
 * read and hashed (the digest covers the whole file).
 */
async function skipPrefix(sending: Sending): Promise<void> {
  const { session, message, state, file, hash, buffers } = sending;
  const { offset } = message;
  if (sending.cached) {
    state.cached = true;
    if (offset > 0) file.seek(offset);
  } else if (offset > 0) {
    // Nothing is read from the client meanwhile: notice if it leaves.
    session.watchPeer();
    const hashed = await copyHashed(
      untilClosed(file, session.signal),
      undefined,
      offset,
      hash,
      buffers(),
    );
    if (hashed < offset) {
      throw new FerryError(
        "CHANGED",
        `File changed while it was read: ${message.path}`,
      );
    }
  }
}

/** Sends `DATA`, then the raw bytes from `offset` to the end. */
async function sendBytes(sending: Sending): Promise<void> {
  const { session, message, state, file, before, hash, buffers } = sending;
  const { size } = before;
  const { offset } = message;
  await writeAll(
    session.conn,
    encodeMessage({ type: "data", size, offset, mtime: mtimeOf(before) }),
  );
  // From here until the last raw byte, a failure cannot be reported in
  // band: the client counts bytes, so the connection has to close.
  state.closeOnError = true;
  state.silentOnError = true;
  // With a cached digest the bytes need not pass through this process:
  // `sendfile` hands the page cache's pages to the socket (half the CPU
  // time of reading and writing them). Without one they are read to be
  // hashed, and sending the pages just read measured no better than
  // writing the buffer (see `_server/zero_copy.ts`).
  const socket = sending.cached ? session.zeroCopy() : undefined;
  const sent = socket
    ? await socket.sendFile(file.fd, offset, size - offset, {
      signal: session.signal,
      activity: session.activity,
      onProgress: (done) => state.bytes = done,
    })
    : await copyHashed(
      file,
      session.conn,
      size - offset,
      hash,
      buffers(),
      (done) => state.bytes = done,
    );
  if (sent < size - offset) {
    throw new FerryError(
      "CHANGED",
      `File shrank while it was sent: ${message.path}`,
    );
  }
  state.closeOnError = false;
  state.silentOnError = false;
}

/**
 * Sends the whole file's `HASH` if the file is still the version it was
 * when opened (then a new digest goes to the hash cache).
 */
async function sendDigest(sending: Sending): Promise<void> {
  const { session, context, message, file, before, hostPath } = sending;
  // Size, times and inode as before: the bytes sent are one version of
  // the file, and a cached digest is that version's.
  const after = await file.stat();
  if (!sameVersion(before, after)) {
    throw new FerryError(
      "CHANGED",
      `File changed while it was sent: ${message.path}`,
    );
  }
  let digest = sending.cached;
  if (digest === undefined) {
    digest = sending.hash!.digest();
    context.hashCache?.store(
      hostPath,
      before,
      session.digest,
      digest,
      sending.observedAt,
    );
  }
  await writeAll(session.conn, encodeMessage({ type: "hash", digest }));
}
