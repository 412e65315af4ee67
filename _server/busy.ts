/**
 * Connections over the limit: answered `ERROR BUSY` and closed
 * ({@linkcode BusyRefusals}).
 *
 * @module
 */

import { closeQuietly, DISCARD } from "./linger_close.ts";
import { encodeMessage, writeAll } from "../protocol.ts";

/** Most refusals answered at once; further ones are closed without a word. */
const MAX_PENDING_REFUSALS = 64;
/** How long a refused peer may take to read `BUSY` and close. */
const REFUSAL_LINGER_MS = 1_000;
/** How much of a refused peer's data is read and dropped before closing. */
const REFUSAL_DRAIN_BYTES = 64 * 1024;
const BUSY_FRAME = encodeMessage({
  type: "error",
  code: "BUSY",
  message: "Server busy: too many connections, try again later",
});

/**
 * Answers connections over the limit with `ERROR BUSY`.
 *
 * The frame goes out at once, then the server's side is shut for writing
 * and whatever the peer already sent (its `HELLO`) is read and dropped until
 * it closes, for at most a second: closing a socket with unread data would
 * reset the connection and could destroy the `BUSY` before the peer reads
 * it. A classic peer cannot parse the frame: to it, the server refused
 * (its client reports that the file does not exist). At most 64 refusals
 * linger at once; beyond that a connection is closed without a word.
 *
 * @example Refuse a connection
 * ```ts ignore
 * import { BusyRefusals } from "./busy.ts";
 * const refusals = new BusyRefusals();
 * using listener = Deno.listen({ port: 0 });
 * refusals.refuse(await listener.accept());
 * refusals.closeAll();
 * await refusals.settled();
 * ```
 */
export class BusyRefusals {
  #open = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();

  /**
   * Sends `BUSY` to `conn` and closes it, in the background.
   *
   * @param conn A connection over the limit.
   */
  refuse(conn: Deno.Conn): void {
    if (this.#open.size >= MAX_PENDING_REFUSALS) {
      closeQuietly(conn);
      return;
    }
    this.#open.add(conn);
    const task: Promise<void> = this.#answer(conn).finally(() => {
      this.#open.delete(conn);
      this.#tasks.delete(task);
    });
    this.#tasks.add(task);
  }

  /** Closes every connection still being refused. */
  closeAll(): void {
    for (const conn of this.#open) closeQuietly(conn);
  }

  /**
   * Waits for every refusal to end.
   *
   * @returns A promise that settles when none is left.
   */
  async settled(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  async #answer(conn: Deno.Conn): Promise<void> {
    const timer = setTimeout(() => closeQuietly(conn), REFUSAL_LINGER_MS);
    try {
      await writeAll(conn, BUSY_FRAME);
      await conn.closeWrite();
      let dropped = 0;
      while (dropped < REFUSAL_DRAIN_BYTES) {
        const n = await conn.read(DISCARD);
        if (n === null) break;
        dropped += n;
      }
    } catch {
      // The peer left, or the linger time ran out: nothing more to say.
    } finally {
      clearTimeout(timer);
      closeQuietly(conn);
    }
  }
}
