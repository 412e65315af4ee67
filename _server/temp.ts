/**
 * Names of the server's upload temporaries (`.ferry-<hex>.part`): made
 * fresh for each upload, hidden from listings and refused as request paths.
 *
 * @module
 */

import { toHex } from "../_common/bytes.ts";
import { FerryError } from "../errors.ts";

/**
 * Names of upload temporaries and of the leases on resumable parts
 * (`_server/upload_lease.ts`), hidden from listings and refused.
 */
export const TEMP_NAME = /^\.ferry-[0-9a-f]+\.(?:part|lease)$/;

/** Refuses a path whose last segment is an upload temporary's name. */
export function refuseTempName(segments: string[], wirePath: string): void {
  const name = segments.at(-1);
  if (name !== undefined && TEMP_NAME.test(name)) {
    throw new FerryError("FORBIDDEN", `Path not allowed: ${wirePath}`);
  }
}

/** A fresh random name for an upload temporary: `.ferry-<hex>.part`. */
export function tempName(): string {
  return tempNameOf(toHex(crypto.getRandomValues(new Uint8Array(12))));
}

/**
 * The name of an upload temporary with the given lowercase hex digits (the
 * resumable part of an upload is named after the upload).
 */
export function tempNameOf(hex: string): string {
  return `.ferry-${hex}.part`;
}
