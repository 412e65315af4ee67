/**
 * Digests as bytes: lowercase hex, and comparison.
 *
 * @module
 */

/**
 * Lowercase hex of a digest.
 *
 * @param bytes The digest.
 * @returns Its hex form.
 *
 * @example Two bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { toHex } from "./bytes.ts";
 * assert(toHex(new Uint8Array([0, 255])) === "00ff");
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  if (bytes.length > MAX_FAST_HEX_BYTES) {
    let hex = "";
    for (const byte of bytes) hex += HEX_PAIRS[byte];
    return hex;
  }
  // One flat string from the character codes (joining pairs made a rope
  // of 32 pieces per digest, flattened later: ~2-6 us, this ~0.2-0.8).
  const codes = HEX_CODES_SCRATCH;
  codes.length = bytes.length * 2;
  for (let i = 0; i < bytes.length; i++) {
    codes[2 * i] = HEX_CODES[2 * bytes[i]];
    codes[2 * i + 1] = HEX_CODES[2 * bytes[i] + 1];
  }
  return String.fromCharCode.apply(null, codes);
}

/** Longer inputs go pair by pair (no argument list that long). */
const MAX_FAST_HEX_BYTES = 1024;

/** The two hex digits of each byte. */
const HEX_PAIRS: readonly string[] = Array.from(
  { length: 256 },
  (_, byte) => byte.toString(16).padStart(2, "0"),
);

/** The character codes of each byte's two hex digits, one after the other. */
const HEX_CODES: Uint8Array = Uint8Array.from(
  HEX_PAIRS.join(""),
  (char) => char.charCodeAt(0),
);

/** Reused list of character codes for one digest's hex. */
const HEX_CODES_SCRATCH: number[] = [];

/**
 * Compares two digests.
 *
 * @param a One digest.
 * @param b The other.
 * @returns Whether they are equal.
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
