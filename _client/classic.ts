/**
 * A client for the classic protocol of the lab programs in `seed/`
 * (`classic_server.py`), written so that it never saves a wrong file.
 *
 * The classic protocol has no framing:
 *
 * 1. The client connects and sends the file name as raw UTF-8 bytes.
 * 2. The server answers `NOT_EXISTS`, or `EXISTS` followed (in a second send)
 *    by the size as ASCII decimal digits.
 * 3. The client answers `READY`; the server sends exactly `size` raw bytes
 *    and closes the connection.
 *
 * TCP may split or join these sends in any way, so {@linkcode classicGet}
 * parses the reply as a stream of bytes rather than one read per message:
 *
 * - Bytes are accumulated until they start with `NOT_EXISTS` (the file is
 *   missing: `NOT_FOUND`) or with `EXISTS`; anything else is a `PROTOCOL`
 *   error as soon as it can no longer become one of the two.
 * - After `EXISTS` only digits may follow. The classic server sends nothing
 *   more until it receives `READY`, so the size is complete once at least one
 *   digit has arrived and then no byte arrives for
 *   {@linkcode CLASSIC_SIZE_QUIET_MS} milliseconds (or the server closes the
 *   connection). A non-digit, more than {@linkcode CLASSIC_MAX_SIZE_DIGITS}
 *   digits or a size above `Number.MAX_SAFE_INTEGER` is a `PROTOCOL` error.
 * - The whole wait for the reply, from sending the name to the end of the
 *   size, is bounded by `timeoutMs` ({@linkcode CLASSIC_TIMEOUT_MS} by
 *   default): a server that stays silent fails with `TIMEOUT`.
 * - Exactly `size` bytes must follow `READY`, and then the server must
 *   close (within {@linkcode CLASSIC_CLOSE_WAIT_MS}). Fewer bytes before
 *   the connection ends is a `CONNECTION` error; any byte beyond them before
 *   the close, however late, is a `PROTOCOL` error; no close is a
 *   `TIMEOUT`. In every case no file is left behind. This is also what
 *   catches a size decided too early: a server that sends its digits
 *   slower than {@linkcode CLASSIC_SIZE_QUIET_MS} apart would have the rest
 *   of its digits and its whole file arrive as bytes past a too-small size.
 *
 * @module
 */

import type { ConnectOptions, TransferResult } from "./types.ts";
import { FerryError } from "../errors.ts";
import { lateImport } from "../_common/late_import.ts";
import type { ByteWriter } from "../protocol.ts";

/**
 * How long the size must be followed by silence, in milliseconds, before the
 * classic client takes it as complete.
 *
 * @example Read the rule
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_SIZE_QUIET_MS } from "../client.ts";
 * assert(CLASSIC_SIZE_QUIET_MS === 200);
 * ```
 */
export const CLASSIC_SIZE_QUIET_MS = 200;

/**
 * How long, in milliseconds, the classic client waits after the announced
 * bytes for the server to close: a byte that comes first, or no close at
 * all, keeps nothing.
 *
 * @example Read the rule
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_CLOSE_WAIT_MS } from "../client.ts";
 * assert(CLASSIC_CLOSE_WAIT_MS === 5_000);
 * ```
 */
export const CLASSIC_CLOSE_WAIT_MS = 5_000;

/**
 * Default bound on the whole wait for a classic server's reply, in
 * milliseconds.
 *
 * @example Read the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_TIMEOUT_MS } from "../client.ts";
 * assert(CLASSIC_TIMEOUT_MS === 10_000);
 * ```
 */
export const CLASSIC_TIMEOUT_MS = 10_000;

/**
 * Most digits a classic size may have.
 *
 * @example Read the limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_MAX_SIZE_DIGITS } from "../client.ts";
 * assert(CLASSIC_MAX_SIZE_DIGITS === 20);
 * ```
 */
export const CLASSIC_MAX_SIZE_DIGITS = 20;

/**
 * Longest file name the classic server can receive (it reads the name with
 * one `recv(1024)`), in UTF-8 bytes.
 *
 * @example Check a name
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLASSIC_MAX_NAME_BYTES } from "../client.ts";
 * assert(new TextEncoder().encode("notes.txt").length <= CLASSIC_MAX_NAME_BYTES);
 * ```
 */
export const CLASSIC_MAX_NAME_BYTES = 1024;

/**
 * Options of {@linkcode classicGet}.
 *
 * @example Fetch with a shorter timeout
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClassicGetOptions } from "../client.ts";
 * const options: ClassicGetOptions = { port: 65432, overwrite: true, timeoutMs: 2000 };
 * assert(options.timeoutMs === 2000);
 * ```
 */
export interface ClassicGetOptions extends ConnectOptions {
  /**
   * Replace an existing destination file instead of failing with `EXISTS`.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * Bound on the wait for the server's reply (up to the end of the size),
   * in milliseconds.
   *
   * @default {10000}
   */
  timeoutMs?: number;
  /** Called after each chunk with the bytes received so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * `_client/classic_get.ts`'s entry: the transfer, once `classicGet` has
 * checked the name and the options. (Declared here so that this module
 * names no type of `classic_get.ts`, which imports this one.)
 */
export type FetchClassic = (
  nameBytes: Uint8Array,
  destination: string | ByteWriter,
  options: ClassicGetOptions & { name: string; timeoutMs: number },
) => Promise<TransferResult>;

/**
 * Downloads one file from a classic server (the lab's `classic_server.py`, or
 * a ferry server, which answers classic clients too).
 *
 * With a path as destination the bytes go to `DEST.part`, which is renamed to
 * `DEST` only once exactly the announced number of bytes has arrived; on any
 * failure it is removed. The classic protocol carries no checksum: the
 * SHA-256 in the result is computed over the bytes received. With a
 * `ByteWriter` the bytes are written as they come, so a failure may leave
 * part of the file written there.
 *
 * @param name File name as the server should look it up.
 * @param destination Local file path, or a writer such as `Deno.stdout`.
 * @param options Where to connect, overwrite, timeout, progress.
 * @returns What was transferred.
 * @throws {FerryError} `EXISTS` if the destination exists and `overwrite`
 * is not set (checked before connecting), `NOT_FOUND` if the server answers
 * `NOT_EXISTS`, `PROTOCOL` for a malformed reply, `TIMEOUT` if the reply
 * does not come in time, `CONNECTION` if the connection fails or ends before
 * all bytes arrived, `LOCAL` if the destination cannot be written,
 * `TOO_LARGE` if the name exceeds {@linkcode CLASSIC_MAX_NAME_BYTES}.
 * @throws {TypeError} If the name is empty, or `token`, `tls` or `caCerts`
 * is given (the classic protocol has neither).
 *
 * @example Download from the lab server
 * ```ts ignore
 * import { classicGet } from "../client.ts";
 * const result = await classicGet("notes.txt", "notes.txt", { port: 65432 });
 * console.log(`${result.bytes} bytes, sha256 ${result.sha256}`);
 * ```
 */
export async function classicGet(
  name: string,
  destination: string | ByteWriter,
  options: ClassicGetOptions = {},
): Promise<TransferResult> {
  if (options.token !== undefined || options.tls || options.caCerts) {
    // Never fall back to plain, unauthenticated TCP behind the caller's back.
    throw new TypeError(
      "classicGet speaks plain TCP without authentication: token, tls and caCerts are not supported",
    );
  }
  const nameBytes = new TextEncoder().encode(name);
  if (nameBytes.length === 0) throw new TypeError("Name must not be empty");
  if (nameBytes.length > CLASSIC_MAX_NAME_BYTES) {
    throw new FerryError(
      "TOO_LARGE",
      `Name longer than ${CLASSIC_MAX_NAME_BYTES} bytes`,
    );
  }
  const { fetchClassic } = await lateImport<{ fetchClassic: FetchClassic }>(
    "./classic_get.ts",
    import.meta.url,
  );
  return await fetchClassic(nameBytes, destination, {
    ...options,
    name,
    timeoutMs: options.timeoutMs ?? CLASSIC_TIMEOUT_MS,
  });
}
