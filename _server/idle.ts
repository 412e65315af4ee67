/**
 * Idle tracking: every read and write on a connection is timed
 * ({@linkcode trackIO}) on its {@linkcode IoActivity}, so that a periodic
 * sweep can close a connection that waited longer than `idleTimeoutMs` for
 * its peer (for the next request, for upload bytes, or for room to send
 * download bytes).
 *
 * @module
 */

/**
 * The I/O clock of one connection: how many reads and writes are waiting
 * on the peer, and when the last one started or ended.
 *
 * @example Time a read
 * ```ts
 * import assert from "node:assert/strict";
 * import { IoActivity } from "./idle.ts";
 * const activity = new IoActivity();
 * activity.begin();
 * assert(!activity.stalled(performance.now(), 1000));
 * activity.end();
 * ```
 */
export class IoActivity {
  #pending = 0;
  #since = performance.now();

  /** Marks the start of a read or write on the connection. */
  begin(): void {
    this.#pending++;
    this.#since = performance.now();
  }

  /** Marks its end (whatever the outcome). */
  end(): void {
    this.#pending--;
    this.#since = performance.now();
  }

  /**
   * Whether a read or write has waited more than `ms` without any other
   * starting or ending.
   *
   * @param now `performance.now()`.
   * @param ms The idle timeout.
   * @returns `true` when the connection is stalled.
   */
  stalled(now: number, ms: number): boolean {
    return this.#pending > 0 && now - this.#since > ms;
  }
}

/**
 * Wraps a connection so that its reads and writes are timed by `activity`;
 * every other member is the connection's own.
 *
 * @param conn The accepted connection (TCP or TLS).
 * @param activity Its clock.
 * @returns The same connection, with timed `read` and `write`.
 *
 * @example Wrap an accepted connection
 * ```ts ignore
 * import { IoActivity, trackIO } from "./idle.ts";
 * using listener = Deno.listen({ port: 0 });
 * const conn = trackIO(await listener.accept(), new IoActivity());
 * ```
 */
export function trackIO<C extends Deno.Conn>(
  conn: C,
  activity: IoActivity,
): C {
  async function read(p: Uint8Array): Promise<number | null> {
    activity.begin();
    try {
      return await conn.read(p);
    } finally {
      activity.end();
    }
  }
  async function write(p: Uint8Array): Promise<number> {
    activity.begin();
    try {
      return await conn.write(p);
    } finally {
      activity.end();
    }
  }
  return new Proxy(conn, {
    get(target, key) {
      if (key === "read") return read;
      if (key === "write") return write;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
