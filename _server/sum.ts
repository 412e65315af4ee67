/**
 * The server's `SUM` handler: the digest of a whole file (from the hash
 * cache when it holds this version, and stored there otherwise) or of its
 * first bytes, so that a syncing client can compare a file, or check that
 * its own copy is a prefix, without fetching it.
 *
 * @module
 */

import { copyHashed } from "../_common/copy.ts";
import { createHasher } from "../_common/digest.ts";
import { sameVersion } from "./hash_cache.ts";
import { resolveExistingSync } from "./path_jail.ts";
import { openResolvedFile } from "./open_file.ts";
import type { RequestState, ServerContext, Session } from "./context.ts";
import { untilClosed } from "./until_closed.ts";
import { refuseTempName } from "./temp.ts";
import { FerryError } from "../errors.ts";
import { encodeMessage, type SumMessage, writeAll } from "../protocol.ts";

/**
 * Answers `SUM` with `HASH`: the digest (in the session's algorithm) of bytes
 * `0..length` of the file, or of the whole file.
 */
export async function handleSum(
  session: Session,
  context: ServerContext,
  message: SumMessage,
  state: RequestState,
): Promise<void> {
  const found = resolveExistingSync(context.realRoot, message.path);
  refuseTempName(found.segments, message.path);
  if (!found.info.isFile) {
    throw new FerryError("FORBIDDEN", `Not a file: ${message.path}`);
  }
  const { file, before, observedAt } = await openResolvedFile(
    context.realRoot,
    found.hostPath,
    message.path,
  );
  try {
    const whole = message.length === undefined;
    const length = message.length ?? before.size;
    if (length > before.size) {
      throw new FerryError(
        "BAD_REQUEST",
        `Length ${length} is past the end of ${message.path} (${before.size} bytes)`,
      );
    }
    let digest = whole
      ? context.hashCache?.lookup(found.hostPath, before, session.digest)
      : undefined;
    if (digest !== undefined) {
      state.cached = true;
    } else {
      const hash = await createHasher(session.digest);
      const hashed = await copyHashed(
        untilClosed(file, session.signal),
        undefined,
        length,
        hash,
        session.bulkBuffers(length),
      );
      const after = await file.stat();
      if (hashed < length || !sameVersion(before, after)) {
        throw new FerryError(
          "CHANGED",
          `File changed while it was hashed: ${message.path}`,
        );
      }
      digest = hash.digest();
      if (whole) {
        context.hashCache?.store(
          found.hostPath,
          before,
          session.digest,
          digest,
          observedAt,
        );
      }
    }
    await writeAll(
      session.conn,
      encodeMessage({ type: "hash", digest }),
    );
  } finally {
    file.close();
  }
}
