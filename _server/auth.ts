/**
 * The server's side of the `AUTH` step: the challenge nonce, the check of
 * the client's mac, and a per-address throttle that slows repeated failures.
 *
 * The mac covers the client's `HELLO` frame exactly as sent. The server
 * rebuilds those bytes by encoding the `HELLO` it decoded: the layout has a
 * single encoding for each message (fixed-width fields, exact lengths, no
 * trailing bytes), so the re-encoded frame equals the bytes received.
 *
 * A failed attempt is answered with `ERROR UNAUTHORIZED` only after a delay
 * that doubles with each failure from the same address (the host, without
 * the port; for IPv6 its /64, within which one client can rotate addresses
 * at will, see `_server/address_key.ts`), up to a cap; the delay is never skipped, so failing again is
 * never faster. An address is forgotten after a quiet period without
 * failures or on success, and the table is bounded: the oldest addresses
 * are dropped first.
 *
 * @module
 */

import { addressKey } from "./address_key.ts";
import {
  authMac,
  type ByteWriter,
  encodeMessage,
  type FrameReader,
  type HelloMessage,
  macEquals,
  writeAll,
} from "../protocol.ts";
import { delay } from "../_common/delay.ts";

/**
 * Delay before the first `UNAUTHORIZED` reply to an address, in
 * milliseconds; each further failure doubles it.
 *
 * @example Compute the third delay
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_AUTH_FAILURE_DELAY_MS } from "./auth.ts";
 * assert(DEFAULT_AUTH_FAILURE_DELAY_MS * 4 === 1000);
 * ```
 */
export const DEFAULT_AUTH_FAILURE_DELAY_MS = 250;

/**
 * Longest delay before an `UNAUTHORIZED` reply, in milliseconds.
 *
 * @example The cap
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_AUTH_FAILURE_DELAY_MS } from "./auth.ts";
 * assert(MAX_AUTH_FAILURE_DELAY_MS === 5000);
 * ```
 */
export const MAX_AUTH_FAILURE_DELAY_MS = 5_000;

/**
 * Time without a failure after which an address starts afresh, in
 * milliseconds (10 minutes).
 *
 * @example The quiet period
 * ```ts
 * import assert from "node:assert/strict";
 * import { AUTH_FAILURE_FORGET_MS } from "./auth.ts";
 * assert(AUTH_FAILURE_FORGET_MS === 600_000);
 * ```
 */
export const AUTH_FAILURE_FORGET_MS = 600_000;

/**
 * Most addresses the throttle remembers; beyond it the oldest is dropped.
 *
 * @example The bound
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_AUTH_FAILURE_ADDRESSES } from "./auth.ts";
 * assert(MAX_AUTH_FAILURE_ADDRESSES === 10_000);
 * ```
 */
export const MAX_AUTH_FAILURE_ADDRESSES = 10_000;

/** Length of the server's challenge nonce, in bytes. */
const SERVER_NONCE_BYTES = 32;

/**
 * Options of {@linkcode AuthThrottle}.
 *
 * @example Fast delays for a test
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AuthThrottleOptions } from "./auth.ts";
 * const options: AuthThrottleOptions = { baseDelayMs: 10 };
 * assert(options.baseDelayMs === 10);
 * ```
 */
export interface AuthThrottleOptions {
  /**
   * Delay before the first `UNAUTHORIZED` reply, in milliseconds.
   *
   * @default {250}
   */
  baseDelayMs?: number;
  /**
   * Longest delay, in milliseconds.
   *
   * @default {5000}
   */
  maxDelayMs?: number;
  /**
   * Quiet period after which an address is forgotten, in milliseconds.
   *
   * @default {600000}
   */
  forgetMs?: number;
  /**
   * Most addresses remembered.
   *
   * @default {10000}
   */
  maxAddresses?: number;
  /** Clock in milliseconds (tests replace it). @default {Date.now} */
  now?: () => number;
}

/** Failures of one address. */
interface FailureRecord {
  count: number;
  last: number;
}

/**
 * Remembers authentication failures per address and says how long to wait
 * before answering the next one.
 *
 * @example Delays double with each failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { AuthThrottle } from "./auth.ts";
 * const throttle = new AuthThrottle({ baseDelayMs: 100, maxDelayMs: 300 });
 * assert(throttle.fail("10.0.0.1") === 100);
 * assert(throttle.fail("10.0.0.1") === 200);
 * assert(throttle.fail("10.0.0.1") === 300);
 * throttle.succeed("10.0.0.1");
 * assert(throttle.fail("10.0.0.1") === 100);
 * ```
 */
export class AuthThrottle {
  #baseDelayMs: number;
  #maxDelayMs: number;
  #forgetMs: number;
  #maxAddresses: number;
  #now: () => number;
  #failures = new Map<string, FailureRecord>();

  /**
   * Makes an empty throttle.
   *
   * @param options Delays, quiet period, size bound.
   * @throws {RangeError} If a delay or bound is negative or not finite.
   */
  constructor(options: AuthThrottleOptions = {}) {
    this.#baseDelayMs = checkNonNegative(
      options.baseDelayMs ?? DEFAULT_AUTH_FAILURE_DELAY_MS,
      "baseDelayMs",
    );
    this.#maxDelayMs = Math.max(
      this.#baseDelayMs,
      checkNonNegative(
        options.maxDelayMs ?? MAX_AUTH_FAILURE_DELAY_MS,
        "maxDelayMs",
      ),
    );
    this.#forgetMs = checkNonNegative(
      options.forgetMs ?? AUTH_FAILURE_FORGET_MS,
      "forgetMs",
    );
    this.#maxAddresses = Math.max(
      1,
      checkNonNegative(
        options.maxAddresses ?? MAX_AUTH_FAILURE_ADDRESSES,
        "maxAddresses",
      ),
    );
    this.#now = options.now ?? Date.now;
  }

  /** Number of addresses remembered. */
  get size(): number {
    return this.#failures.size;
  }

  /**
   * Records a failure from `address`.
   *
   * @param address The peer's host (no port).
   * @returns How long to wait before answering it, in milliseconds.
   */
  fail(address: string): number {
    address = addressKey(address);
    const now = this.#now();
    const previous = this.#failures.get(address);
    const count = previous && now - previous.last < this.#forgetMs
      ? previous.count + 1
      : 1;
    // Re-inserting moves the address to the end: the map stays ordered by
    // last failure, so the first key is always the oldest.
    this.#failures.delete(address);
    this.#failures.set(address, { count, last: now });
    while (this.#failures.size > this.#maxAddresses) {
      this.#failures.delete(this.#failures.keys().next().value!);
    }
    const delay = this.#baseDelayMs * 2 ** Math.min(count - 1, 30);
    return Math.min(delay, this.#maxDelayMs);
  }

  /**
   * Forgets the failures of `address` after it authenticated.
   *
   * @param address The peer's host (no port).
   */
  succeed(address: string): void {
    this.#failures.delete(addressKey(address));
  }
}

function checkNonNegative(value: number, name: string): number {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a non-negative number: ${value}`);
  }
  return value;
}

/**
 * A fresh server nonce for a `HELLO` that asks for authentication.
 *
 * @returns 32 random bytes.
 *
 * @example Make a challenge
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeServerNonce } from "./auth.ts";
 * assert(makeServerNonce().length === 32);
 * ```
 */
export function makeServerNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(SERVER_NONCE_BYTES));
}

/**
 * What {@linkcode verifyAuth} needs from a connection.
 *
 * @example A connection that has nothing to say
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AuthConnection } from "./auth.ts";
 * import { FrameReader } from "../protocol.ts";
 * const connection: AuthConnection = {
 *   reader: new FrameReader({ read: () => Promise.resolve(null) }),
 *   writer: { write: (p) => Promise.resolve(p.length) },
 *   host: "127.0.0.1",
 *   signal: new AbortController().signal,
 * };
 * assert(connection.host === "127.0.0.1");
 * ```
 */
export interface AuthConnection {
  /** Reads the client's frames. */
  reader: FrameReader;
  /** Writes the server's frames. */
  writer: ByteWriter;
  /** The peer's host (no port): the throttle's key. */
  host: string;
  /** Aborted when the connection closes: cuts a pending delay short. */
  signal: AbortSignal;
}

/**
 * The challenge of one handshake: the secret, and what the mac covers.
 *
 * @example The shape
 * ```ts
 * import assert from "node:assert/strict";
 * import type { AuthChallenge } from "./auth.ts";
 * const challenge: AuthChallenge = {
 *   token: "s3cret", version: 1, serverNonce: new Uint8Array(32),
 *   clientHello: new Uint8Array(0), serverHello: new Uint8Array(0),
 * };
 * assert(challenge.version === 1);
 * ```
 */
export interface AuthChallenge {
  /** The shared secret. */
  token: string;
  /** The protocol version the server chose. */
  version: number;
  /** The nonce of the server's `HELLO`. */
  serverNonce: Uint8Array;
  /** The client's `HELLO` frame, header included. */
  clientHello: Uint8Array;
  /** The server's `HELLO` frame, header included. */
  serverHello: Uint8Array;
}

/**
 * How an `AUTH` step ended: `"ok"` (and `OK` was sent), `"UNAUTHORIZED"`
 * (a wrong mac or another message, answered after the delay, or the peer
 * left), `"TIMEOUT"` or `"CONNECTION"` (the connection closed under us).
 */
export type AuthResult = "ok" | "UNAUTHORIZED" | "TIMEOUT" | "CONNECTION";

/**
 * Encodes the client's `HELLO` as it was sent (see the module doc).
 *
 * @param hello The decoded client `HELLO`.
 * @returns Its frame bytes, header included.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { clientHelloBytes } from "./auth.ts";
 * import { decodeFrame, encodeMessage, type HelloMessage } from "../protocol.ts";
 * const sent = encodeMessage({
 *   type: "hello", minVersion: 1, maxVersion: 1, flags: 0, nonce: new Uint8Array(32),
 * });
 * const decoded = decodeFrame(sent)!.message as HelloMessage;
 * assert(clientHelloBytes(decoded).join() === sent.join());
 * ```
 */
export function clientHelloBytes(hello: HelloMessage): Uint8Array {
  return encodeMessage(hello);
}

/**
 * Runs the server's side of the `AUTH` step once its `HELLO` has been sent:
 * reads the client's next frame, checks its mac in constant time, and
 * answers `OK`, or `ERROR UNAUTHORIZED` after the throttle's delay.
 *
 * @param connection The connection's reader, writer, host and close signal.
 * @param challenge The secret and the bytes the mac covers.
 * @param throttle The server's failure table.
 * @param timedOut Tells whether the handshake deadline closed the
 * connection (to report `TIMEOUT` rather than `CONNECTION`).
 * @returns How the step ended; anything but `"ok"` means: close.
 *
 * @example Check a client's answer
 * ```ts ignore
 * import { AuthThrottle, verifyAuth } from "./auth.ts";
 * const result = await verifyAuth(connection, challenge, new AuthThrottle(), () => false);
 * if (result !== "ok") connection.close();
 * ```
 */
export async function verifyAuth(
  connection: AuthConnection,
  challenge: AuthChallenge,
  throttle: AuthThrottle,
  timedOut: () => boolean,
): Promise<AuthResult> {
  let reply;
  try {
    reply = await connection.reader.readMessage();
  } catch {
    if (timedOut()) return "TIMEOUT";
    if (connection.signal.aborted) return "CONNECTION";
    reply = undefined; // an unreadable frame is a failed attempt
  }
  if (reply === null) return "UNAUTHORIZED"; // left without trying
  let good = false;
  if (reply?.type === "auth") {
    const expected = await authMac(
      challenge.token,
      challenge.serverNonce,
      challenge.version,
      challenge.clientHello,
      challenge.serverHello,
    );
    good = macEquals(expected, reply.mac);
  }
  if (good) {
    throttle.succeed(connection.host);
    try {
      await writeAll(connection.writer, encodeMessage({ type: "ok" }));
    } catch {
      return timedOut() ? "TIMEOUT" : "CONNECTION";
    }
    return "ok";
  }
  await delay(throttle.fail(connection.host), connection.signal);
  if (connection.signal.aborted) return "UNAUTHORIZED";
  try {
    await writeAll(
      connection.writer,
      encodeMessage({
        type: "error",
        code: "UNAUTHORIZED",
        message: reply?.type === "auth"
          ? "Authentication failed"
          : "Authentication required",
      }),
    );
  } catch {
    // The peer left while it waited: nothing more to tell it.
  }
  return "UNAUTHORIZED";
}
