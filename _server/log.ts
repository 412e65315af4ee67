/**
 * The server command line's request log: one line on stderr per request,
 * as text or as JSON.
 *
 * Text (`--log text`, the default), fields separated by one space:
 *
 * ```text
 * 2024-05-01T12:00:00.000Z 127.0.0.1:53412 ferry GET "docs/a.txt" 4096 ok 0.8ms
 * ```
 *
 * time (ISO 8601, UTC), peer (`host:port`, IPv6 in brackets), protocol
 * (`ferry` or `classic`), request (`LIST`, `STAT`, `GET`, `PUT`, `MKDIR`,
 * `HELLO`, `INVALID`, ...), path (a JSON string, so spaces and control bytes
 * stay on one line), file bytes moved, result (`ok` or an error code),
 * duration in milliseconds with one decimal and the unit `ms`.
 *
 * JSON (`--log json`): one object per line with the fields of
 * `ServerLogEvent`: `time` (ISO string), `peer`, `protocol`, `request`,
 * `path`, `bytes`, `result`, `durationMs` (a number, 3 decimals).
 *
 * @module
 */

import { safeJson } from "../_common/escape.ts";
import type { ServerLogEvent } from "./types.ts";

/** The formats `--log` accepts. */
export const LOG_FORMATS: readonly string[] = ["text", "json"];

/**
 * One text log line.
 *
 * @param event The request.
 * @returns The line, without a newline.
 *
 * @example Format a GET
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatLogText } from "./log.ts";
 * const line = formatLogText({
 *   time: new Date(0), peer: "127.0.0.1:5000", protocol: "ferry", request: "GET",
 *   path: "a.txt", bytes: 3, result: "ok", durationMs: 1.25,
 * });
 * assert(line === '1970-01-01T00:00:00.000Z 127.0.0.1:5000 ferry GET "a.txt" 3 ok 1.3ms');
 * ```
 */
export function formatLogText(event: ServerLogEvent): string {
  return [
    event.time.toISOString(),
    event.peer,
    event.protocol,
    event.request,
    safeJson(event.path),
    String(event.bytes),
    event.result,
    `${event.durationMs.toFixed(1)}ms`,
  ].join(" ");
}

/**
 * One JSON log line.
 *
 * @param event The request.
 * @returns The line, without a newline.
 *
 * @example Format a GET
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatLogJson } from "./log.ts";
 * const line = formatLogJson({
 *   time: new Date(0), peer: "127.0.0.1:5000", protocol: "ferry", request: "GET",
 *   path: "a.txt", bytes: 3, result: "ok", durationMs: 1.25,
 * });
 * assert(JSON.parse(line).time === "1970-01-01T00:00:00.000Z");
 * ```
 */
export function formatLogJson(event: ServerLogEvent): string {
  return safeJson({
    time: event.time.toISOString(),
    peer: event.peer,
    protocol: event.protocol,
    request: event.request,
    path: event.path,
    bytes: event.bytes,
    result: event.result,
    durationMs: Math.round(event.durationMs * 1000) / 1000,
  });
}
