/**
 * Conditional requests (RFC 9110 section 13) for files: `If-None-Match`
 * and `If-Modified-Since` turn a `GET` or `HEAD` into `304 Not Modified`,
 * and `If-Range` decides whether a `Range` is honoured.
 *
 * `If-None-Match` compares entity tags weakly (`W/"x"` matches `"x"`),
 * `If-Range` strongly: a weak tag never matches, and a date matches only
 * when it equals `Last-Modified` and that date is a strong validator (the
 * file was last modified at least one second before the response).
 * `If-Modified-Since` is ignored when `If-None-Match` is present.
 *
 * @module
 */

import type { Validators } from "./headers.ts";

/**
 * Whether a `GET` or `HEAD` with these headers gets `304`.
 *
 * @param headers The request's headers.
 * @param validators The file's validators.
 */
export function notModified(headers: Headers, validators: Validators): boolean {
  const ifNoneMatch = headers.get("if-none-match");
  if (ifNoneMatch !== null) {
    if (ifNoneMatch.trim() === "*") return true;
    const ours = opaque(validators.etag);
    return splitTags(ifNoneMatch).some((tag) => opaque(tag) === ours);
  }
  const since = headers.get("if-modified-since");
  if (since === null || validators.mtimeSeconds === undefined) return false;
  const date = parseHttpDate(since);
  return date !== undefined && validators.mtimeSeconds <= date;
}

/**
 * Whether a `Range` may be honoured: true without `If-Range`, else only
 * when its validator matches the file strongly.
 *
 * @param headers The request's headers.
 * @param validators The file's validators.
 * @param now The time of the response, in milliseconds.
 */
export function rangeAllowed(
  headers: Headers,
  validators: Validators,
  now: number,
): boolean {
  const ifRange = headers.get("if-range");
  if (ifRange === null) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) {
    return validators.strong && value === validators.etag;
  }
  const date = parseHttpDate(value);
  const mtime = validators.mtimeSeconds;
  return date !== undefined && mtime !== undefined && date === mtime &&
    mtime * 1000 + 1000 <= now;
}

/** The entity tags of an `If-None-Match` list. */
function splitTags(list: string): string[] {
  return list.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

/** A tag without its weakness marker, for the weak comparison. */
function opaque(tag: string): string {
  return tag.startsWith("W/") ? tag.slice(2) : tag;
}

/** An HTTP date in whole seconds since the epoch, or `undefined`. */
function parseHttpDate(value: string): number | undefined {
  if (value.length > 64) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}
