/**
 * The client's idle bound on an open session: {@linkcode IdleWatch} closes a
 * connection on which a read or write waited too long, and
 * {@linkcode WatchedReader} reads frames through one.
 *
 * @module
 */

import { FerryError } from "../errors.ts";
import { FrameReader } from "../protocol.ts";
import { startQuietTimer } from "../_common/quiet_timer.ts";

/**
 * Watches a connection's reads and writes: once one has waited
 * `timeoutMs` without any read or write completing, `onTimeout` runs (it
 * closes the connection, so the pending call fails). It reads and writes
 * through to the connection, and costs a timer per `timeoutMs`, not per
 * call.
 */
export class IdleWatch {
  #conn: {
    read(p: Uint8Array): Promise<number | null>;
    write(p: Uint8Array): Promise<number>;
  };
  #timeoutMs: number;
  #onTimeout: (() => void) | undefined;
  #pending = 0;
  #since = 0;
  /** Cancels the armed timer; undefined when none is armed. */
  #timer: (() => void) | undefined;
  #timedOut = false;

  /**
   * @param conn The connection.
   * @param timeoutMs The bound, in milliseconds; 0 (or less) for none.
   */
  constructor(
    conn: {
      read(p: Uint8Array): Promise<number | null>;
      write(p: Uint8Array): Promise<number>;
    },
    timeoutMs: number,
  ) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /** Whether the bound passed. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** The error for calls cut by the bound. */
  timeoutError(cause?: unknown): FerryError {
    return new FerryError(
      "TIMEOUT",
      `No data from the server for ${this.#timeoutMs / 1000} s`,
      { cause },
    );
  }

  /** Starts watching (until {@linkcode IdleWatch.stop}). */
  start(onTimeout: () => void): void {
    if (this.#timeoutMs > 0) this.#onTimeout = onTimeout;
    if (this.#pending > 0) this.#arm(this.#timeoutMs);
  }

  /** Stops watching. */
  stop(): void {
    this.#onTimeout = undefined;
    this.#timer?.();
    this.#timer = undefined;
  }

  /** Reads from the connection. */
  read(p: Uint8Array): Promise<number | null> {
    return this.#watch(this.#conn.read(p));
  }

  /** Writes to the connection. */
  write(p: Uint8Array): Promise<number> {
    return this.#watch(this.#conn.write(p));
  }

  async #watch<T>(call: Promise<T>): Promise<T> {
    this.#pending++;
    this.#since = performance.now();
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
    try {
      return await call;
    } finally {
      this.#pending--;
      this.#since = performance.now();
    }
  }

  #arm(ms: number): void {
    if (this.#onTimeout === undefined) return;
    // A quiet timer: a client left open between requests must not keep a
    // program alive, and Deno's setTimeout costs ~10 ms at its first call.
    this.#timer = startQuietTimer(ms, () => this.#check());
  }

  #check(): void {
    this.#timer = undefined;
    if (this.#pending === 0 || this.#onTimeout === undefined) return;
    const idle = performance.now() - this.#since;
    if (idle < this.#timeoutMs) {
      this.#arm(this.#timeoutMs - idle);
      return;
    }
    this.#timedOut = true;
    const onTimeout = this.#onTimeout;
    this.stop();
    onTimeout();
  }
}

/**
 * A frame reader over an {@linkcode IdleWatch}, which it carries: the
 * session that takes the reader over (a `FerryClient` after `connect()`'s
 * handshake) starts and stops that watch instead of making another.
 */
export class WatchedReader extends FrameReader {
  /** The watch this reader reads through. */
  readonly watch: IdleWatch;

  /** @param watch The watch over the connection. */
  constructor(watch: IdleWatch) {
    super(watch);
    this.watch = watch;
  }
}
