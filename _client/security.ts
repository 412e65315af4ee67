/**
 * The client's side of ferry's security: a TLS connection that verifies the
 * server's certificate (with the system's roots or the caller's CA
 * certificates), and the `AUTH` answer to a server's challenge.
 *
 * The mac covers the server's `HELLO` frame exactly as received; the client
 * rebuilds those bytes by encoding the `HELLO` it decoded, which is exact
 * because every message has a single encoding (see `protocol.ts`).
 *
 * @module
 */

import type { ConnectOptions } from "./types.ts";
import { DEFAULT_HOSTNAME, DEFAULT_PORT } from "../_common/defaults.ts";
import { formatAddress, messageOf } from "../_common/text.ts";
import { dialError, guardConn } from "./dial.ts";
import { FerryError } from "../errors.ts";
import { authMac, encodeMessage, type HelloMessage } from "../protocol.ts";

/**
 * Message of the `UNAUTHORIZED` error when the server asks for a token and
 * none was given.
 *
 * @example Show it
 * ```ts
 * import assert from "node:assert/strict";
 * import { MISSING_TOKEN_MESSAGE } from "./security.ts";
 * assert(MISSING_TOKEN_MESSAGE.startsWith("Server requires a token"));
 * ```
 */
export const MISSING_TOKEN_MESSAGE =
  "Server requires a token (--token-file or FERRY_TOKEN)";

/**
 * Whether `options` ask for TLS (`tls`, or CA certificates given).
 *
 * @param options The connect options.
 * @returns True for TLS.
 *
 * @example CA certificates imply TLS
 * ```ts
 * import assert from "node:assert/strict";
 * import { wantsTls } from "./security.ts";
 * assert(wantsTls({ caCerts: ["-----BEGIN CERTIFICATE-----"] }));
 * assert(!wantsTls({}));
 * ```
 */
export function wantsTls(options: ConnectOptions): boolean {
  return options.tls === true || (options.caCerts?.length ?? 0) > 0;
}

/**
 * Tells whether a first reply byte starts a TLS record (an alert, `0x15`, or
 * a handshake, `0x16`): no ferry frame type has these values, so a plain
 * client that sees one is talking to a TLS server.
 *
 * @param byte The first byte the server sent.
 * @returns True for a TLS record type.
 *
 * @example A TLS alert
 * ```ts
 * import assert from "node:assert/strict";
 * import { isTlsRecord } from "./security.ts";
 * assert(isTlsRecord(0x15) && !isTlsRecord(0x00));
 * ```
 */
export function isTlsRecord(byte: number): boolean {
  return byte === 0x15 || byte === 0x16;
}

/**
 * Opens a TLS connection and completes its handshake, so that a
 * certificate the client does not trust fails here, with one clear line.
 *
 * @param options Where to connect, the CA certificates, a signal.
 * @param timeoutMs Longest wait for the TLS handshake, in milliseconds.
 * @returns The connection, its handshake done.
 * @throws {FerryError} `CONNECTION` if the server cannot be reached, is not
 * speaking TLS, or presents a certificate that is not trusted; `TIMEOUT` if
 * the handshake takes longer than `timeoutMs`; the signal's reason if it is
 * aborted.
 *
 * @example Connect with a private CA
 * ```ts ignore
 * import { dialTls } from "./security.ts";
 * const caCerts = [await Deno.readTextFile("ca.pem")];
 * const conn = await dialTls({ hostname: "files.example", port: 65432, caCerts }, 10_000);
 * conn.close();
 * ```
 */
export async function dialTls(
  options: ConnectOptions,
  timeoutMs: number,
): Promise<Deno.TlsConn> {
  const hostname = options.hostname ?? DEFAULT_HOSTNAME;
  const port = options.port ?? DEFAULT_PORT;
  const signal = options.signal;
  signal?.throwIfAborted();
  const address = formatAddress({ hostname, port });
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.connectTls({ hostname, port, caCerts: options.caCerts });
  } catch (error) {
    throw dialError(error, address, { tls: true });
  }
  const guard = guardConn(conn, timeoutMs, signal);
  try {
    await conn.handshake();
    return conn;
  } catch (error) {
    guard.close();
    if (signal?.aborted) throw signal.reason;
    if (guard.timedOut) {
      throw new FerryError(
        "TIMEOUT",
        `No TLS handshake with ${address} within ${timeoutMs} ms`,
        { cause: error },
      );
    }
    const detail = firstLine(error);
    const message = /certificate|UnknownIssuer|NotValidForName|expired/i
        .test(detail)
      ? `Untrusted TLS certificate from ${address}: ${detail}`
      : `Cannot complete a TLS handshake with ${address} (is it a TLS server?): ${detail}`;
    throw new FerryError("CONNECTION", message, { cause: error });
  } finally {
    guard.clear();
  }
}

function firstLine(error: unknown): string {
  return messageOf(error).split("\n")[0];
}

/**
 * Builds the `AUTH` frame that answers a server's challenge.
 *
 * @param token The shared secret.
 * @param clientHello The client's `HELLO` frame as sent, header included.
 * @param serverHello The server's `HELLO`, decoded.
 * @param version The version the server chose.
 * @returns A promise of the `AUTH` frame bytes.
 *
 * @example Answer a challenge
 * ```ts
 * import assert from "node:assert/strict";
 * import { authFrame } from "./security.ts";
 * import { encodeMessage } from "../protocol.ts";
 * const clientHello = encodeMessage({
 *   type: "hello", minVersion: 1, maxVersion: 1, flags: 0, nonce: new Uint8Array(32),
 * });
 * const frame = await authFrame("s3cret", clientHello, {
 *   type: "hello", minVersion: 1, maxVersion: 1, flags: 1, nonce: new Uint8Array(32),
 * }, 1);
 * assert(frame.length === 5 + 32);
 * ```
 */
export async function authFrame(
  token: string,
  clientHello: Uint8Array,
  serverHello: HelloMessage,
  version: number,
): Promise<Uint8Array> {
  const mac = await authMac(
    token,
    serverHello.nonce,
    version,
    clientHello,
    encodeMessage(serverHello),
  );
  return encodeMessage({ type: "auth", mac });
}
