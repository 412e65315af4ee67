/**
 * {@linkcode untilClosed}: a reader that gives up once its connection closes.
 *
 * @module
 */

import type { ByteReader } from "../protocol.ts";

/**
 * A reader that stops once `signal` aborts (the connection closed: its
 * peer left, it timed out or the server stopped), for the work a request
 * does before it talks to the peer again (hashing the start of a file), so
 * that neither a departed client nor a drain deadline waits for it.
 */
export function untilClosed(
  source: ByteReader,
  signal: AbortSignal,
): ByteReader {
  return {
    read(p: Uint8Array): Promise<number | null> {
      if (signal.aborted) {
        return Promise.reject(new Deno.errors.Interrupted("Connection closed"));
      }
      return source.read(p);
    },
  };
}
