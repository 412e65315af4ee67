/**
 * Small statistics and formatting helpers for the benchmark: median with
 * min and max, nearest-rank percentiles, and the number formats used in the
 * tables.
 *
 * @module
 */

/** Bytes in a megabyte as the benchmark reports it (SI, 10^6). */
export const MB = 1_000_000;

/** Bytes in a mebibyte (2^20), used for sizes of test data. */
export const MIB = 1024 * 1024;

/** Median, minimum and maximum of a set of runs. */
export interface Summary {
  /** Median of the values (mean of the two middle ones for an even count). */
  median: number;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** How many values were summarised. */
  n: number;
}

/**
 * Summarises values as median, min and max.
 *
 * @param values At least one finite number.
 * @returns The summary.
 * @throws {RangeError} If `values` is empty.
 *
 * @example Summarise three runs
 * ```ts
 * import assert from "node:assert/strict";
 * import { summarize } from "./_stats.ts";
 * const s = summarize([3, 1, 2]);
 * assert(s.median === 2 && s.min === 1 && s.max === 3 && s.n === 3);
 * ```
 */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError("No values to summarise");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1
    ? sorted[mid]
    : (sorted[mid - 1] + sorted[mid]) / 2;
  return {
    median,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    n: sorted.length,
  };
}

/**
 * Maps a summary of durations to a summary of rates `amount / seconds`: the
 * median rate is taken from the median duration, the slowest run gives the
 * minimum rate and the fastest the maximum.
 *
 * @param seconds Summary of durations in seconds.
 * @param amount What was moved per run (bytes / MB, files, ...).
 * @returns The summary of rates.
 *
 * @example Throughput of 100 MB moved in about 2 s
 * ```ts
 * import assert from "node:assert/strict";
 * import { rate, summarize } from "./_stats.ts";
 * const r = rate(summarize([2, 1, 4]), 100);
 * assert(r.median === 50 && r.min === 25 && r.max === 100);
 * ```
 */
export function rate(seconds: Summary, amount: number): Summary {
  return {
    median: amount / seconds.median,
    min: amount / seconds.max,
    max: amount / seconds.min,
    n: seconds.n,
  };
}

/**
 * Nearest-rank percentile of a set of values.
 *
 * @param values At least one number.
 * @param p The percentile, 0 to 100.
 * @returns The smallest value such that at least `p` percent of the values
 * are at or below it.
 * @throws {RangeError} If `values` is empty.
 *
 * @example p50 and p99 of 1..100
 * ```ts
 * import assert from "node:assert/strict";
 * import { percentile } from "./_stats.ts";
 * const v = Array.from({ length: 100 }, (_, i) => i + 1);
 * assert(percentile(v, 50) === 50 && percentile(v, 99) === 99);
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError("No values for a percentile");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/**
 * Formats a number with a precision suited to its size: 3 significant
 * digits below 100, whole numbers above.
 *
 * @param value The number.
 * @returns The text, e.g. `"0.123"`, `"12.3"`, `"1234"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmt } from "./_stats.ts";
 * assert(fmt(12.345) === "12.3" && fmt(1234.5) === "1235");
 * ```
 */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  if (abs === 0) return "0";
  return value.toPrecision(3);
}

/**
 * Formats a summary as `median (min–max)`, or just the value for one run.
 *
 * @param s The summary.
 * @param scale Multiplier applied before formatting (e.g. 1000 for ms).
 * @returns The text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmtSummary, summarize } from "./_stats.ts";
 * assert(fmtSummary(summarize([1, 2, 3])) === "2.00 (1.00–3.00)");
 * ```
 */
export function fmtSummary(s: Summary, scale = 1): string {
  if (s.n === 1) return fmt(s.median * scale);
  return `${fmt(s.median * scale)} (${fmt(s.min * scale)}–${
    fmt(s.max * scale)
  })`;
}

/**
 * Rounds every number in a summary for JSON output.
 *
 * @param s The summary.
 * @param digits Decimal places kept.
 * @returns A copy with rounded fields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roundSummary } from "./_stats.ts";
 * assert(roundSummary({ median: 1.23456, min: 1, max: 2, n: 3 }, 2).median === 1.23);
 * ```
 */
export function roundSummary(s: Summary, digits = 4): Summary {
  return {
    median: round(s.median, digits),
    min: round(s.min, digits),
    max: round(s.max, digits),
    n: s.n,
  };
}

/**
 * Rounds a number to a number of decimal places.
 *
 * @param value The number.
 * @param digits Decimal places.
 * @returns The rounded number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { round } from "./_stats.ts";
 * assert(round(1.23456, 2) === 1.23);
 * ```
 */
export function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Formats a byte count with a binary unit: `4 KiB`, `64 MiB`, `1 GiB`.
 *
 * @param bytes The byte count.
 * @returns The text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fmtBytes } from "./_stats.ts";
 * assert(fmtBytes(1024 ** 3) === "1 GiB" && fmtBytes(4096) === "4 KiB");
 * ```
 */
export function fmtBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}
