/**
 * Ending a connection politely ({@linkcode lingerClose}) or quietly
 * ({@linkcode closeQuietly}).
 *
 * @module
 */

/** Shared scratch space for dropped bytes: nothing in it is ever read. */
export const DISCARD: Uint8Array = new Uint8Array(16 * 1024);

/**
 * Ends a connection politely: shuts the sending side (the peer reads all
 * that was sent, then the end of the stream) and reads and drops whatever
 * the peer still sends (such as pipelined requests that will not be
 * answered) until it closes. Closing a socket with unread bytes would reset
 * the connection, and a reset can destroy the last reply before the peer
 * has read it. The caller bounds the wait by closing the connection (the
 * idle sweep, the drain deadline).
 *
 * @param conn The connection.
 * @param reader Its reader (bytes it buffered are dropped first).
 * @returns A promise that settles when the peer has closed, or on error.
 *
 * @example End a session after its last reply
 * ```ts ignore
 * import { lingerClose } from "./linger_close.ts";
 * using listener = Deno.listen({ port: 0 });
 * const conn = await listener.accept();
 * await lingerClose(conn, conn);
 * conn.close();
 * ```
 */
export async function lingerClose(
  conn: Deno.Conn,
  reader: { read(p: Uint8Array): Promise<number | null> },
): Promise<void> {
  try {
    await conn.closeWrite();
    while ((await reader.read(DISCARD)) !== null) {
      // dropped
    }
  } catch {
    // Reset, or closed by a deadline: either way the connection is over.
  }
}

/**
 * Closes a connection, ignoring one that is already closed.
 *
 * @param conn The connection.
 */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
