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
 * Formats `hostname:port`, with brackets around an IPv6 address, for
 * messages and logs on both sides.
 *
 * @param addr Host name or address, and port.
 * @returns The address, such as `127.0.0.1:65432` or `[::1]:65432`.
 */
export function formatAddress(
  addr: { readonly hostname: string; readonly port: number },
): string {
  return `${formatHost(addr.hostname)}:${addr.port}`;
}

/**
 * A host for a URL or an address: an IPv6 address in brackets.
 *
 * @param hostname Host name or address.
 * @returns `hostname`, or `[hostname]` when it holds a colon.
 */
export function formatHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
