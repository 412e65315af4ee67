/**
 * {@linkcode addressKey}: the unit a server counts one peer by, for the
 * per-address connection limit and the failed-authentication throttle: an
 * IPv4 address, or the /64 prefix of an IPv6 address (one subscriber's
 * network, within which a client can rotate addresses at will).
 *
 * @module
 */

/**
 * The key of a peer address: IPv4 as is (an IPv4-mapped IPv6 address as its
 * IPv4 form), IPv6 as its first four groups and `::/64`.
 *
 * @param hostname A numeric host, as `Deno.NetAddr.hostname` gives it.
 * @returns The key.
 *
 * @example Two addresses of one /64 share a key
 * ```ts
 * import assert from "node:assert/strict";
 * import { addressKey } from "./address_key.ts";
 * assert.equal(addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:2:ffff::9"));
 * assert.equal(addressKey("2001:db8:1:2::1"), "2001:db8:1:2::/64");
 * assert.equal(addressKey("::ffff:192.0.2.1"), "192.0.2.1");
 * assert.equal(addressKey("192.0.2.1"), "192.0.2.1");
 * ```
 */
export function addressKey(hostname: string): string {
  let host = hostname.replace(/^\[|\]$/g, "");
  if (!host.includes(":")) return host;
  const zone = host.indexOf("%");
  if (zone >= 0) host = host.slice(0, zone);
  const mapped = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/i
    .exec(host);
  if (mapped) return mapped[1];
  const groups = expand(host.toLowerCase());
  if (groups === undefined) return host.toLowerCase();
  return `${
    groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")
  }::/64`;
}

/** The eight groups of an IPv6 address, or `undefined` if malformed. */
function expand(host: string): string[] | undefined {
  const halves = host.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== ""
    ? halves[1].split(":")
    : [];
  // An embedded IPv4 tail counts as two groups.
  const last = tail.length > 0 ? tail : head;
  if (last.length > 0 && last[last.length - 1].includes(".")) {
    last.splice(last.length - 1, 1, "0", "0");
  }
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [
    ...head,
    ...Array<string>(halves.length === 2 ? missing : 0).fill("0"),
    ...tail,
  ];
}
