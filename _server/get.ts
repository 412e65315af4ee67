/**
 * The server's `GET` handler: sends a file (or its tail, for a resumed
 * download) with the digest of the whole file (in the session's algorithm), and refuses to vouch for a
 * file that changed while it was sent.
 *
 * @module
 */

import { untilClosed } from "./until_closed.ts";
import { copyHashed } from "../_common/copy.ts";
import { createHasher } from "../_common/digest.ts";
import { sameVersion } from "./hash_cache.ts";
import { resolveExistingSync } from "./path_jail.ts";
import { openResolvedFile } from "./open_file.ts";
import {
  mtimeOf,
  type RequestState,
  type ServerContext,
  type Session,
} from "./context.ts";
import { refuseTempName } from "./temp.ts";
import { FRAMES_BYTES, sendSmallFile, SMALL_FILE_BYTES } from "./small_get.ts";
import { FerryError } from "../errors.ts";
import { encodeMessage, type GetMessage, writeAll } from "../protocol.ts";

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
  const found = resolveExistingSync(context.realRoot, message.path);
  refuseTempName(found.segments, message.path);
  if (!found.info.isFile) {
    throw new FerryError("FORBIDDEN", `Not a file: ${message.path}`);
  }
  if (message.offset === 0 && found.info.size <= SMALL_FILE_BYTES) {
    // Opened once, proven inside the root, sent in one write.
    const sent = await sendSmallFile({
      realRoot: context.realRoot,
      hostPath: found.hostPath,
      wirePath: message.path,
      conn: session.conn,
      buffers: session.bulkBuffers(found.info.size + FRAMES_BYTES),
      hashCache: context.hashCache,
      algorithm: session.digest,
    });
    if (sent !== undefined) {
      state.bytes = sent.bytes;
      if (sent.cached) state.cached = true;
      return;
    }
  }
  // Opened, then proven to be the file inside the root (a folder on the
  // path may have been swapped for a link out of it since the check).
  const { file, before, observedAt } = await openResolvedFile(
    context.realRoot,
    found.hostPath,
    message.path,
  );
  try {
    const { size } = before;
    const mtime = mtimeOf(before);
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
      found.hostPath,
      before,
      session.digest,
    );
    const hash = cached ? undefined : await createHasher(session.digest);
    const buffers = session.bulkBuffers(size);
    if (cached) {
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
        buffers,
      );
      if (hashed < offset) {
        throw new FerryError(
          "CHANGED",
          `File changed while it was read: ${message.path}`,
        );
      }
    }
    await writeAll(
      session.conn,
      encodeMessage({ type: "data", size, offset, mtime }),
    );
    // From here until the last raw byte, a failure cannot be reported in
    // band: the client counts bytes, so the connection has to close.
    state.closeOnError = true;
    state.silentOnError = true;
    const sent = await copyHashed(
      file,
      session.conn,
      size - offset,
      hash,
      buffers,
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
    // Size, times and inode as before: the bytes sent are one version of
    // the file, and a cached digest is that version's.
    const after = await file.stat();
    if (!sameVersion(before, after)) {
      throw new FerryError(
        "CHANGED",
        `File changed while it was sent: ${message.path}`,
      );
    }
    let digest = cached;
    if (digest === undefined) {
      digest = hash!.digest();
      context.hashCache?.store(
        found.hostPath,
        before,
        session.digest,
        digest,
        observedAt,
      );
    }
    await writeAll(session.conn, encodeMessage({ type: "hash", digest }));
  } finally {
    file.close();
  }
}
