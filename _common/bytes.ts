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
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

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
