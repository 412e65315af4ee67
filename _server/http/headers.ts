/**
 * Response headers of the HTTP face that describe a file: its media type
 * (npm `mime-types`, the table of the `mime-db` project), its
 * `Content-Disposition` (RFC 6266, with an RFC 5987 `filename*` for names
 * that are not plain ASCII), its `Last-Modified` date, its entity tag and
 * its `Repr-Digest` (RFC 9530), and the security headers every response
 * carries.
 *
 * **Entity tags.** When the server's hash cache knows the SHA-256 of this
 * version of the file (it was downloaded or uploaded through the ferry
 * protocol with SHA-256 as the digest, and has not changed since: see
 * `_server/hash_cache.ts`), the tag is strong and derived from the
 * content: `"sha256-<base64url>"`, the same for every copy of the same
 * bytes, and the response carries `Repr-Digest: sha-256=:<base64>:`. The
 * cache's XXH3-128 digests (ferry's default) are not used: a strong tag is
 * trusted by `If-Range` to splice a resumed download, and XXH3 is not
 * collision-resistant, so a user who can write in the root could make two
 * different files share one. Otherwise the tag is weak,
 * `W/"<size>-<mtime>-<ctime>"` (base 36): it changes whenever the file is
 * written, but two versions written within one clock tick could share it,
 * which is why it is weak; a weak tag never satisfies `If-Range`, so a
 * resumed download of such a file falls back to its `Last-Modified` date.
 *
 * @module
 */

import mime from "mime-types";
import { Buffer } from "node:buffer";

/** Media type of a file name; `application/octet-stream` when unknown. */
export function contentTypeOf(name: string): string {
  const found: unknown = mime.contentType(name);
  return typeof found === "string" ? found : "application/octet-stream";
}

/**
 * A `Content-Disposition` value for `name`: an ASCII `filename` (quotes,
 * backslashes and non-ASCII replaced) and, when the name is not plain
 * printable ASCII, a UTF-8 `filename*` (RFC 5987).
 */
export function contentDisposition(
  type: "inline" | "attachment",
  name: string,
): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  if (fallback === name) return `${type}; filename="${name}"`;
  const extended = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename="${fallback}"; filename*=UTF-8''${extended}`;
}

/** The validators of one version of a file. */
export interface Validators {
  /** The entity tag, strong (`"..."`) or weak (`W/"..."`). */
  etag: string;
  /** Whether `etag` is strong (derived from the content digest). */
  strong: boolean;
  /** `Last-Modified`, an IMF-fixdate; `undefined` without an mtime. */
  lastModified: string | undefined;
  /** Modification time in whole seconds (the precision of the date). */
  mtimeSeconds: number | undefined;
  /** `Repr-Digest` value when the SHA-256 is known. */
  reprDigest: string | undefined;
}

/**
 * The validators of a file version.
 *
 * @param info The open file's status.
 * @param sha256 Its SHA-256 when known (from the hash cache).
 */
export function validatorsOf(
  info: Deno.FileInfo,
  sha256: Uint8Array | undefined,
): Validators {
  const mtime = info.mtime?.getTime();
  let etag: string;
  let reprDigest: string | undefined;
  if (sha256 !== undefined) {
    const bytes = Buffer.from(sha256.buffer, sha256.byteOffset, 32);
    etag = `"sha256-${bytes.toString("base64url")}"`;
    reprDigest = `sha-256=:${bytes.toString("base64")}:`;
  } else {
    const ctime = info.ctime?.getTime() ?? 0;
    etag = `W/"${info.size.toString(36)}-${(mtime ?? 0).toString(36)}-${
      ctime.toString(36)
    }"`;
  }
  return {
    etag,
    strong: sha256 !== undefined,
    lastModified: mtime === undefined
      ? undefined
      : new Date(mtime).toUTCString(),
    mtimeSeconds: mtime === undefined ? undefined : Math.floor(mtime / 1000),
    reprDigest,
  };
}

/**
 * Policy of a listing page: its own inline style only (by hash-free
 * `style-src 'unsafe-inline'`, no scripts at all), images and forms to the
 * server itself, never framed.
 */
export const LISTING_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/**
 * Policy of a served file: a sandbox (no scripts, an opaque origin), so an
 * HTML file from the root cannot act as the server's own pages.
 */
export const FILE_CSP =
  "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; " +
  "style-src 'unsafe-inline'; frame-ancestors 'none'";

/** Headers on every response. */
export function baseHeaders(): Headers {
  return new Headers({
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
  });
}
