/**
 * PROXY protocol headers for tests, built by hand (the server only decodes
 * them): version 2 from its parts, and the common INET and v1 forms.
 *
 * @module
 */

/** The 12 bytes every version 2 header starts with. */
export const PROXY_V2_SIGNATURE: readonly number[] = [
  13,
  10,
  13,
  10,
  0,
  13,
  10,
  81,
  85,
  73,
  84,
  10,
];

/**
 * A version 2 header: `command` (0 LOCAL, 1 PROXY), the family/transport
 * byte (0x11 TCP over IPv4) and the payload (addresses, TLVs).
 */
export function proxyV2(
  command: number,
  family: number,
  payload: readonly number[],
): Uint8Array {
  return new Uint8Array([
    ...PROXY_V2_SIGNATURE,
    0x20 | command,
    family,
    payload.length >> 8,
    payload.length & 0xff,
    ...payload,
  ]);
}

/** A version 2 PROXY header for a TCP client `host:port` (IPv4) to 127.0.0.1:65432. */
export function proxyV2Inet(host: string, port: number): Uint8Array {
  const octets = host.split(".").map(Number);
  return proxyV2(1, 0x11, [
    ...octets,
    127,
    0,
    0,
    1,
    port >> 8,
    port & 0xff,
    0xff,
    0x98,
  ]);
}

/** The version 2 LOCAL header HAProxy's health checks send. */
export const PROXY_V2_LOCAL: Uint8Array = proxyV2(0, 0, []);

/** A version 1 header line. */
export function proxyV1(line: string): Uint8Array {
  return new TextEncoder().encode(`PROXY ${line}\r\n`);
}
