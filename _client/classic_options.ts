/**
 * The options and bounds of the classic client (`classicGet` in
 * `_client/classic.ts`, which re-exports them).
 *
 * @module
 */

import type { ConnectOptions } from "./types.ts";

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
 * Options of `classicGet`.
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
