/**
 * The client's public option and result types, which `client.ts`
 * re-exports, and the constructor of a {@linkcode TransferResult}.
 *
 * @module
 */

import { toHex } from "../_common/bytes.ts";
import type { DigestAlgorithm } from "../protocol.ts";

/**
 * Where to connect, for {@linkcode connect} and {@linkcode classicGet}.
 *
 * @example Connect to another port
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ConnectOptions } from "../client.ts";
 * const options: ConnectOptions = { hostname: "127.0.0.1", port: 4000 };
 * assert(options.port === 4000);
 * ```
 */
export interface ConnectOptions {
  /**
   * Host name or IP address of the server.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * TCP port of the server.
   *
   * @default {65432}
   */
  port?: number;
  /**
   * Aborting it closes the connection; pending operations reject with the
   * signal's reason.
   */
  signal?: AbortSignal;
  /**
   * Shared secret for a server that requires authentication; it never
   * crosses the wire (the client answers the server's challenge). Ferry
   * protocol only: {@linkcode classicGet} refuses it.
   *
   * @default {undefined}
   */
  token?: string;
  /**
   * Connect with TLS, verifying the server's certificate against the
   * system's roots (or `caCerts`). Ferry protocol only.
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * CA certificates (PEM text) to trust instead of the system's roots;
   * giving any implies `tls`.
   *
   * @default {undefined}
   */
  caCerts?: string[];
  /**
   * Once connected, how long a read or write on the connection may wait
   * without any progress before the session is closed and the request
   * fails with `TIMEOUT`, in milliseconds; 0 waits for ever. (A server
   * hashing a very large kept prefix before it answers a resumed transfer
   * is silent meanwhile.)
   *
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /**
   * Most entries a listing may hold; past it `list()` fails with
   * `TOO_LARGE` and the session closes (the server's default limit too).
   *
   * @default {1000000}
   */
  maxListEntries?: number;
  /**
   * Most bytes of names (UTF-16 code units) a listing may hold; past it
   * `list()` fails with `TOO_LARGE` and the session closes.
   *
   * @default {268435456} (256 MiB)
   */
  maxListBytes?: number;
  /**
   * The digest algorithm every transfer of the session is verified with.
   * Unset, the client offers `"xxh3-128"` then `"sha256"` and the server
   * picks (XXH3-128: fast, catches accidental corruption). `"sha256"`
   * offers SHA-256 alone, e.g. to compare results with published SHA-256
   * sums; a server that does not support it refuses the session with
   * `UNSUPPORTED_VERSION`. Neither stops an attacker on the path: use TLS.
   *
   * @default {undefined}
   */
  digest?: DigestAlgorithm;
}

/**
 * What a finished transfer reports.
 *
 * @example Print a result
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferResult } from "../client.ts";
 * const result: TransferResult = {
 *   path: "a.txt", bytes: 3, algorithm: "xxh3-128", digest: "ab", seconds: 0.1,
 * };
 * assert(result.bytes === 3);
 * ```
 */
export interface TransferResult {
  /** Path of the file on the server (the requested name for classic gets). */
  path: string;
  /** Size of the whole file in bytes. */
  bytes: number;
  /**
   * The digest algorithm of the session: `"xxh3-128"` unless SHA-256 was
   * asked for ({@linkcode ConnectOptions.digest}).
   */
  algorithm: DigestAlgorithm;
  /** Digest of the whole file in `algorithm`, lowercase hex. */
  digest: string;
  /**
   * SHA-256 of the whole file, lowercase hex: the same as `digest` when
   * `algorithm` is `"sha256"`, absent otherwise.
   *
   * @deprecated Use `digest` and `algorithm`; protocol version 2 verifies
   * with XXH3-128 unless SHA-256 is asked for.
   */
  sha256?: string;
  /** Wall-clock duration of the transfer, in seconds. */
  seconds: number;
  /**
   * Bytes that were already there (a kept `DEST.part`, or the server's
   * part of an upload) and were not sent again; 0 or absent when the
   * transfer started at the first byte.
   */
  resumedFrom?: number;
  /** Set when kept bytes were discarded and the transfer started over. */
  restarted?: boolean;
}

/**
 * Options of {@linkcode FerryClient.get} and {@linkcode FerryClient.put}.
 *
 * @example Overwrite and watch progress
 * ```ts
 * import assert from "node:assert/strict";
 * import type { TransferOptions } from "../client.ts";
 * const options: TransferOptions = {
 *   overwrite: true,
 *   onProgress: (done, total) => console.log(`${done}/${total}`),
 * };
 * assert(options.overwrite);
 * ```
 */
export interface TransferOptions {
  /**
   * Replace an existing destination instead of failing with `EXISTS`.
   *
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * Called after each chunk with the bytes moved so far and the total; a
   * resumed transfer counts the bytes already there (it starts at
   * `offset`, see `onResume`).
   */
  onProgress?: (done: number, total: number) => void;
  /**
   * Continue an interrupted transfer instead of starting over: a download
   * to a file path continues from `DEST.part` (when `DEST.part.ferry` shows
   * it holds the start of the same version of the same file), an upload
   * from the server's part of the same upload. Downloads to a writer or a
   * stream never resume.
   *
   * @default {true}
   */
  resume?: boolean;
  /**
   * Upload only: take the server's current file as the start of this one
   * and send only the bytes past its length (the `PUT` append flag). The
   * server checks the whole file's SHA-256; if its file was not a prefix
   * (`INTEGRITY`), the upload starts over once, whole. Use it after
   * `FerryClient.sum` showed the server's file is a prefix.
   *
   * @default {false}
   */
  append?: boolean;
  /** Called once, before any byte moves, when a transfer resumes at `offset`. */
  onResume?: (offset: number, total: number) => void;
  /**
   * Called when kept bytes are discarded and the transfer starts over (at
   * most once per transfer), with the reason, such as
   * `remote file changed`.
   */
  onRestart?: (reason: string) => void;
}

/**
 * The result of a finished transfer of a whole file.
 *
 * @param path Path of the file on the server.
 * @param bytes Size of the whole file.
 * @param verified `algorithm` and `digest` of the whole file, `start`: when
 * the transfer started (`performance.now()`).
 * @returns The result, timed up to now.
 */
export function transferResult(
  path: string,
  bytes: number,
  verified: { algorithm: DigestAlgorithm; digest: Uint8Array; start: number },
): TransferResult {
  const digest = toHex(verified.digest);
  const result: TransferResult = {
    path,
    bytes,
    algorithm: verified.algorithm,
    digest,
    seconds: (performance.now() - verified.start) / 1000,
  };
  if (verified.algorithm === "sha256") result.sha256 = digest;
  return result;
}
