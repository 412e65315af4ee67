/**
 * The server's resource limits: their defaults, their resolution and the
 * checks of a request against them. What enforces them lives beside:
 *
 * - **Connections.** At most `maxConnections` at once; one more is answered
 *   `ERROR BUSY` and closed (`busy.ts`).
 * - **Idle peers.** Every read and write on a connection is timed
 *   (`idle.ts`); a connection that waited longer than `idleTimeoutMs` for
 *   its peer is closed by a periodic sweep.
 * - **Requests.** Path depth and upload size are checked before a request
 *   runs ({@linkcode checkRequestLimits}); frame size is the frame
 *   reader's limit; listing size is counted as entries are sent.
 * - **Write errors.** An upload's file writes go through an `UploadSink`
 *   (`upload_sink.ts`).
 *
 * @module
 */

import { DEFAULT_MAX_LIST_ENTRIES as COMMON_MAX_LIST_ENTRIES } from "../_common/defaults.ts";
import { DEFAULT_IDLE_TIMEOUT_MS as COMMON_IDLE_TIMEOUT_MS } from "../_common/defaults.ts";
import { FerryError } from "../errors.ts";
import { MAX_FRAME_BYTES, type Message } from "../protocol.ts";

/**
 * Connections served at once unless told otherwise; one more is refused
 * with `BUSY`.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_CONNECTIONS } from "./limits.ts";
 * assert(DEFAULT_MAX_CONNECTIONS === 512);
 * ```
 */
export const DEFAULT_MAX_CONNECTIONS = 512;

/** Default of `maxConnectionsPerAddress`: 32. */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 32;

/** Default of `maxPartBytes`: 1 GiB of kept upload parts. */
export const DEFAULT_MAX_PART_BYTES: number = 1024 * 1024 * 1024;

/**
 * How long a connection may wait for its peer unless told otherwise, in
 * milliseconds: 60 seconds.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_IDLE_TIMEOUT_MS } from "./limits.ts";
 * assert(DEFAULT_IDLE_TIMEOUT_MS === 60_000);
 * ```
 */
export const DEFAULT_IDLE_TIMEOUT_MS: number = COMMON_IDLE_TIMEOUT_MS;

/**
 * How long a stopping server lets requests in progress finish unless told
 * otherwise, in milliseconds: 5 seconds.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DRAIN_MS } from "./limits.ts";
 * assert(DEFAULT_DRAIN_MS === 5_000);
 * ```
 */
export const DEFAULT_DRAIN_MS = 5_000;

/**
 * Most segments a request path may have unless told otherwise.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_PATH_DEPTH } from "./limits.ts";
 * assert(DEFAULT_MAX_PATH_DEPTH === 64);
 * ```
 */
export const DEFAULT_MAX_PATH_DEPTH = 64;

/**
 * Most entries one `LIST` sends unless told otherwise.
 *
 * @example Use the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_LIST_ENTRIES } from "./limits.ts";
 * assert(DEFAULT_MAX_LIST_ENTRIES === 1_000_000);
 * ```
 */
export const DEFAULT_MAX_LIST_ENTRIES: number = COMMON_MAX_LIST_ENTRIES;

/** Longest delay a timer can wait. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Smallest frame limit accepted: a `HELLO` with a full nonce fits. */
const MIN_FRAME_BYTES = 128;

/**
 * The limit options of `serve()`, all optional.
 *
 * @example Tighten two limits
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LimitOptions } from "./limits.ts";
 * const options: LimitOptions = { maxConnections: 64, maxUploadBytes: 1 << 30 };
 * assert(options.maxConnections === 64);
 * ```
 */
export interface LimitOptions {
  /**
   * Connections served at once; one more gets `ERROR BUSY` and is closed.
   *
   * @default {512}
   */
  maxConnections?: number;
  /**
   * Longest wait for the peer, in milliseconds: for the next request, and
   * within a request for each read of upload bytes or each write of
   * download bytes. A connection past it is closed (an upload in progress
   * is discarded).
   *
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /**
   * When the server stops, how long requests in progress may run on, in
   * milliseconds; then every connection is closed. Connections between
   * requests close at once.
   *
   * @default {5000}
   */
  drainMs?: number;
  /**
   * Largest frame payload accepted, in bytes (at most `MAX_FRAME_BYTES`);
   * a larger declared length gets `TOO_LARGE` and the connection closes.
   *
   * @default {1048576}
   */
  maxFrameBytes?: number;
  /**
   * Most `/`-separated segments in a request path; a deeper path gets
   * `TOO_LARGE` (the connection stays usable).
   *
   * @default {64}
   */
  maxPathDepth?: number;
  /**
   * Most entries one `LIST` sends; past it the listing ends with
   * `ERROR TOO_LARGE` instead of `END`.
   *
   * @default {1000000}
   */
  maxListEntries?: number;
  /**
   * Largest upload accepted, in bytes; a larger `PUT` gets `TOO_LARGE`
   * before `READY`.
   *
   * @default {Infinity} (no limit)
   */
  maxUploadBytes?: number;
  /**
   * Total bytes of resumable upload parts kept after cut uploads; past it
   * the oldest kept parts are removed (and logged with `result`
   * `PART_EVICTED`); the newest part is always kept, so the total stays
   * within the larger of this and one upload. At most one part is kept
   * per target path.
   *
   * @default {1073741824} (1 GiB)
   */
  maxPartBytes?: number;
  /**
   * Connections served at once from one address (IPv6: one /64); one more
   * gets `ERROR BUSY`.
   *
   * @default {32}
   */
  maxConnectionsPerAddress?: number;
}

/**
 * Every limit, with the defaults filled in.
 *
 * @example Read a limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveLimits, type ServerLimits } from "./limits.ts";
 * const limits: ServerLimits = resolveLimits({});
 * assert(limits.maxUploadBytes === Infinity);
 * ```
 */
export type ServerLimits = Required<LimitOptions>;

/**
 * Checks the limit options and fills in the defaults.
 *
 * @param options The caller's options.
 * @returns Every limit.
 * @throws {RangeError} If a limit is not a number in its range.
 *
 * @example Defaults
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveLimits } from "./limits.ts";
 * assert(resolveLimits({}).maxConnections === 512);
 * ```
 */
export function resolveLimits(options: LimitOptions): ServerLimits {
  return {
    maxConnections: count(
      options.maxConnections,
      DEFAULT_MAX_CONNECTIONS,
      "maxConnections",
      1,
    ),
    idleTimeoutMs: positive(
      options.idleTimeoutMs,
      DEFAULT_IDLE_TIMEOUT_MS,
      "idleTimeoutMs",
    ),
    drainMs: count(
      options.drainMs,
      DEFAULT_DRAIN_MS,
      "drainMs",
      0,
      MAX_TIMER_MS,
    ),
    maxFrameBytes: count(
      options.maxFrameBytes,
      MAX_FRAME_BYTES,
      "maxFrameBytes",
      MIN_FRAME_BYTES,
      MAX_FRAME_BYTES,
    ),
    maxPathDepth: count(
      options.maxPathDepth,
      DEFAULT_MAX_PATH_DEPTH,
      "maxPathDepth",
      1,
    ),
    maxListEntries: count(
      options.maxListEntries,
      DEFAULT_MAX_LIST_ENTRIES,
      "maxListEntries",
      1,
    ),
    maxUploadBytes: options.maxUploadBytes === Infinity
      ? Infinity
      : count(options.maxUploadBytes, Infinity, "maxUploadBytes", 0),
    maxPartBytes: count(
      options.maxPartBytes,
      DEFAULT_MAX_PART_BYTES,
      "maxPartBytes",
      0,
    ),
    maxConnectionsPerAddress: count(
      options.maxConnectionsPerAddress,
      DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
      "maxConnectionsPerAddress",
      1,
    ),
  };
}

function count(
  value: number | undefined,
  fallback: number,
  name: string,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${name} must be an integer from ${min} to ${max}: ${value}`,
    );
  }
  return value;
}

function positive(
  value: number | undefined,
  fallback: number,
  name: string,
): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number: ${value}`);
  }
  return value;
}

/**
 * Refuses a request that breaks a per-request limit, before it runs.
 *
 * @param message The request.
 * @param limits The server's limits.
 * @throws {FerryError} `TOO_LARGE` if its path is deeper than
 * `maxPathDepth` or it uploads more than `maxUploadBytes`.
 *
 * @example A deep path
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkRequestLimits, resolveLimits } from "./limits.ts";
 * const limits = resolveLimits({ maxPathDepth: 2 });
 * checkRequestLimits({ type: "stat", path: "a/b" }, limits);
 * try {
 *   checkRequestLimits({ type: "stat", path: "a/b/c" }, limits);
 *   assert(false);
 * } catch (error) {
 *   assert((error as { code: string }).code === "TOO_LARGE");
 * }
 * ```
 */
export function checkRequestLimits(
  message: Message,
  limits: ServerLimits,
): void {
  if ("path" in message && message.path !== "") {
    let depth = 1;
    for (let i = 0; i < message.path.length; i++) {
      if (message.path.charCodeAt(i) === 0x2f) depth++;
    }
    if (depth > limits.maxPathDepth) {
      throw new FerryError(
        "TOO_LARGE",
        `Path deeper than ${limits.maxPathDepth} segments`,
      );
    }
  }
  if (message.type === "put" && message.size > limits.maxUploadBytes) {
    throw new FerryError(
      "TOO_LARGE",
      `Upload of ${message.size} bytes exceeds the limit of ${limits.maxUploadBytes} bytes`,
    );
  }
}
