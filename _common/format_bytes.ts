/**
 * Byte counts for people, shared by the client's progress line and the
 * server's HTML listings.
 *
 * @module
 */

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`.
 *
 * @param bytes A count.
 * @returns The text.
 *
 * @example Format a mebibyte
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatBytes } from "./format_bytes.ts";
 * assert(formatBytes(1024 * 1024) === "1.0 MiB");
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${Math.round(value)} B`
    : `${value.toFixed(1)} ${units[unit]}`;
}
