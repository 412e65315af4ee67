/**
 * Wording shared by every message either side prints or sends: the message
 * of anything thrown, a message continued after a colon, and `host:port`.
 *
 * @module
 */

/**
 * The message of any thrown value.
 *
 * @param error What was thrown.
 * @returns Its message.
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The text with its first letter in lower case, for a message continued
 * after a colon (`ferry: not found: a.txt`).
 *
 * @param text A message in sentence case.
 * @returns The same message starting in lower case.
 */
export function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * Formats `hostname:port`, with brackets around an IPv6 address.
 *
 * @param hostname Host name or address.
 * @param port Port number.
 * @returns The address for messages.
 */
export function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}
