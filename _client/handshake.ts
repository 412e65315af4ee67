/**
 * The opening of a ferry session, for `connect` in `_client/ferry_client.ts`
 * (which imports this module when it runs): the connection (TCP or TLS),
 * the `HELLO` and `DIGESTS` exchange, and `AUTH` when the server asks for a
 * token.
 *
 * @module
 */

import type { ConnectOptions } from "./types.ts";
import {
  DEFAULT_HOSTNAME,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_PORT,
} from "../_common/defaults.ts";
import { dial, guardConn } from "./dial.ts";
import { formatAddress, messageOf } from "../_common/text.ts";
import { IdleWatch, WatchedReader } from "./idle_watch.ts";
import {
  authFrame,
  dialTls,
  isTlsRecord,
  MISSING_TOKEN_MESSAGE,
  wantsTls,
} from "./security.ts";
import { serverError, transportError } from "./errors.ts";
import { FerryError } from "../errors.ts";
import {
  DIGEST_ALGORITHMS,
  type DigestAlgorithm,
  encodeMessage,
  type FrameReader,
  HELLO_AUTH_REQUIRED,
  HELLO_EAGER_PUT,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "../protocol.ts";

const NONCE_BYTES = 32;

/** A connection whose handshake is done, for the `FerryClient` constructor. */
export interface OpenSession {
  /** The connection. */
  conn: Deno.Conn;
  /** The negotiated protocol version. */
  version: number;
  /** The reader of the handshake, which may hold buffered bytes. */
  reader: WatchedReader;
  /** The digest the server chose. */
  digest: DigestAlgorithm;
  /** The server takes eager `PUT`s. */
  eagerPut: boolean;
}

/**
 * Connects and performs the handshake.
 *
 * @param options Where to connect, the token and TLS settings, a signal.
 * @param timeoutMs How long to wait for the server's replies.
 * @returns The connection and what the handshake agreed on.
 * @throws {FerryError} As `connect` documents.
 */
export async function openSession(
  options: ConnectOptions,
  timeoutMs: number,
): Promise<OpenSession> {
  const address = formatAddress({
    hostname: options.hostname ?? DEFAULT_HOSTNAME,
    port: options.port ?? DEFAULT_PORT,
  });
  const conn = wantsTls(options)
    ? await dialTls(options, timeoutMs)
    : await dial(options);
  const reader = new WatchedReader(
    new IdleWatch(conn, options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS),
  );
  const signal = options.signal;
  const guard = guardConn(conn, timeoutMs, signal);
  try {
    const { version, digest, eagerPut } = await handshake(conn, reader, {
      ...options,
      address,
    });
    return { conn, version, reader, digest, eagerPut };
  } catch (error) {
    guard.close();
    throw handshakeError(error, {
      address,
      signal,
      timedOut: guard.timedOut,
      timeoutMs,
    });
  } finally {
    guard.clear();
  }
}

/**
 * The handshake of `connect`: `HELLO` and `DIGESTS` out, the
 * server's `HELLO` and `DIGESTS` back, then `AUTH` when it asks for a token.
 */
async function handshake(
  conn: Deno.Conn,
  reader: FrameReader,
  options: ConnectOptions & { address: string },
): Promise<{ version: number; digest: DigestAlgorithm; eagerPut: boolean }> {
  const { address } = options;
  const offered = options.digest === undefined
    ? DIGEST_ALGORITHMS
    : [options.digest];
  const clientHello = encodeMessage({
    type: "hello",
    minVersion: PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    flags: 0,
    nonce: crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
  });
  const offer = encodeMessage({ type: "digests", algorithms: [...offered] });
  // DIGESTS goes with HELLO, in one write (see protocol.ts, Handshake).
  const opening = new Uint8Array(clientHello.length + offer.length);
  opening.set(clientHello);
  opening.set(offer, clientHello.length);
  await writeAll(conn, opening);
  const first = await reader.peek();
  if (first !== null && !wantsTls(options) && isTlsRecord(first[0])) {
    throw new FerryError(
      "CONNECTION",
      `${address} answered with TLS: connect with TLS (--tls or --ca FILE)`,
    );
  }
  const hello = await expectReply(reader, "hello", {
    closed: `during the handshake: is ${address} a ferry server?`,
    expected: "HELLO from the server",
  });
  const version = hello.maxVersion;
  if (version !== PROTOCOL_VERSION) {
    throw new FerryError(
      "UNSUPPORTED_VERSION",
      `The server chose protocol version ${version}; this client speaks ${PROTOCOL_VERSION} only`,
    );
  }
  const chosen = await expectReply(reader, "digests", {
    closed: "during the handshake, before DIGESTS",
    expected: "DIGESTS from the server",
  });
  const digest = offered.find((name) =>
    chosen.algorithms.length === 1 && name === chosen.algorithms[0]
  );
  if (digest === undefined) {
    throw new FerryError(
      "UNSUPPORTED_VERSION",
      `The server chose digest ${
        chosen.algorithms.join(", ")
      }; this client offered ${offered.join(", ")}`,
    );
  }
  if (hello.flags & HELLO_AUTH_REQUIRED) {
    if (options.token === undefined || options.token === "") {
      throw new FerryError("UNAUTHORIZED", MISSING_TOKEN_MESSAGE);
    }
    await writeAll(
      conn,
      await authFrame(options.token, clientHello, hello, version),
    );
    await expectReply(reader, "ok", {
      closed: "during authentication",
      expected: "OK after AUTH",
    });
  }
  return {
    version,
    digest,
    eagerPut: (hello.flags & HELLO_EAGER_PUT) !== 0,
  };
}

/**
 * Reads one handshake reply: the end of the stream is `CONNECTION`
 * (`Connection closed ...`), `ERROR` the server's refusal, any other type
 * `PROTOCOL` (`Expected ..., got ...`).
 */
async function expectReply<T extends Message["type"]>(
  reader: FrameReader,
  type: T,
  words: { closed: string; expected: string },
): Promise<Extract<Message, { type: T }>> {
  const reply = await reader.readMessage();
  if (reply === null) {
    throw new FerryError("CONNECTION", `Connection closed ${words.closed}`);
  }
  if (reply.type === "error") throw serverError(reply);
  if (reply.type !== type) {
    throw new FerryError(
      "PROTOCOL",
      `Expected ${words.expected}, got ${reply.type.toUpperCase()}`,
    );
  }
  return reply as Extract<Message, { type: T }>;
}

/** What a failed handshake throws: the abort, a timeout or a clear error. */
function handshakeError(
  error: unknown,
  state: {
    address: string;
    signal?: AbortSignal;
    timedOut: boolean;
    timeoutMs: number;
  },
): unknown {
  const { address, signal } = state;
  if (signal?.aborted) return signal.reason;
  if (state.timedOut) {
    return new FerryError(
      "TIMEOUT",
      `No handshake reply from ${address} within ${state.timeoutMs} ms`,
    );
  }
  if (error instanceof FerryError) {
    if (error.code === "TRUNCATED") {
      return new FerryError(
        "PROTOCOL",
        `Incomplete handshake reply: is ${address} a ferry server?`,
        { cause: error },
      );
    }
    return transportError(error, false);
  }
  return new FerryError(
    "CONNECTION",
    `Connection failed during the handshake: ${messageOf(error)}`,
    { cause: error },
  );
}
