/**
 * The server's two refusals of an upload's `HASH`, the same for every
 * kind of `PUT` (`put.ts`, `eager_put.ts`): a digest of the wrong length
 * for the session's algorithm, and a digest that is not the bytes'.
 *
 * @module
 */

import { sameBytes } from "../_common/bytes.ts";
import { digestFits } from "../_common/digest.ts";
import type { DigestAlgorithm } from "../protocol.ts";
import { FerryError } from "../errors.ts";

/**
 * `BAD_REQUEST` when `claimed` is not a digest of `algorithm`'s length.
 *
 * @param algorithm The session's algorithm.
 * @param claimed The client's digest.
 * @returns The refusal, or `undefined`.
 *
 * @example A SHA-256-long digest in an XXH3 session
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestLengthRefusal } from "./claimed_digest.ts";
 * assert.equal(digestLengthRefusal("xxh3-128", new Uint8Array(32))?.code, "BAD_REQUEST");
 * assert.equal(digestLengthRefusal("xxh3-128", new Uint8Array(16)), undefined);
 * ```
 */
export function digestLengthRefusal(
  algorithm: DigestAlgorithm,
  claimed: Uint8Array,
): FerryError | undefined {
  if (digestFits(algorithm, claimed)) return undefined;
  return new FerryError(
    "BAD_REQUEST",
    `HASH of ${claimed.length} bytes in a ${algorithm} session`,
  );
}

/**
 * `INTEGRITY` when the bytes' `digest` is not the client's `claimed` one.
 *
 * @param algorithm The session's algorithm (for the message).
 * @param path The upload's wire path (for the message).
 * @param digest The digest of the bytes received.
 * @param claimed The client's digest.
 * @returns The refusal, or `undefined`.
 *
 * @example Two different digests
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestRefusal } from "./claimed_digest.ts";
 * const a = new Uint8Array(16);
 * assert.equal(digestRefusal("xxh3-128", "f", a, new Uint8Array(16)), undefined);
 * assert.equal(digestRefusal("xxh3-128", "f", a, a.map(() => 1))?.code, "INTEGRITY");
 * ```
 */
export function digestRefusal(
  algorithm: DigestAlgorithm,
  path: string,
  digest: Uint8Array,
  claimed: Uint8Array,
): FerryError | undefined {
  if (sameBytes(digest, claimed)) return undefined;
  return new FerryError(
    "INTEGRITY",
    `Digest (${algorithm}) mismatch, upload discarded: ${path}`,
  );
}
