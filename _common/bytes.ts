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
 */
export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (let i = 0; i < bytes.length; i++) hex += HEX[bytes[i]];
  return hex;
}

/** The two hex digits of each byte (a tree's every file has a digest). */
const HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, byte) => byte.toString(16).padStart(2, "0"),
);

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
