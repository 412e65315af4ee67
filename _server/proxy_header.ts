/**
 * The PROXY protocol header (HAProxy's, versions 1 and 2) that a load
 * balancer sends first on every connection to say who the client really
 * is. {@linkcode parseProxyHeader} is a pure, total decoder: it never
 * throws for what the bytes say, it tells how many more bytes it needs, and
 * every problem is a typed {@linkcode ProxyHeaderProblem}.
 * {@linkcode readProxyHeader} reads one header from a connection without
 * reading a byte past it.
 *
 * Version 1 is one text line of at most {@linkcode MAX_PROXY_V1_BYTES}
 * bytes: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or `TCP6`, or
 * `UNKNOWN ...`). Version 2 is binary: a 12-byte signature, a version and
 * command byte, a family and transport byte, a 16-bit length, the addresses
 * and optional TLVs; the length is bounded by
 * {@linkcode MAX_PROXY_V2_PAYLOAD_BYTES}. The `LOCAL` command (HAProxy's
 * health checks) and `UNKNOWN`/`UNSPEC`/`UNIX` addresses carry no client
 * address: the connection's own address stands.
 *
 * Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
 *
 * @module
 */

import type { ByteReader } from "../protocol.ts";

/** Longest version 1 header, `\r\n` included (the spec's bound). */
export const MAX_PROXY_V1_BYTES = 107;

/**
 * Longest version 2 payload (addresses and TLVs) accepted: a `UNIX`
 * address block (216 bytes) and room for the TLVs HAProxy sends.
 */
export const MAX_PROXY_V2_PAYLOAD_BYTES = 1024;

/** Longest header of either version. */
export const MAX_PROXY_HEADER_BYTES: number = 16 + MAX_PROXY_V2_PAYLOAD_BYTES;

/** The 12 bytes every version 2 header starts with. */
const V2_SIGNATURE = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
/** `PROXY `: every version 1 header starts with it. */
const V1_PREFIX = new TextEncoder().encode("PROXY ");
/** Shortest version 1 header: `PROXY UNKNOWN\r\n`. */
const MIN_V1_BYTES = 15;

/** A client address carried by a header. */
export interface ProxyAddress {
  /** IPv4 dotted quad or IPv6 text (compressed, no brackets). */
  hostname: string;
  port: number;
}

/** A decoded header. */
export interface ProxyHeader {
  version: 1 | 2;
  /**
   * The original client (`source`) and the address it connected to
   * (`destination`); absent for `LOCAL`, `UNKNOWN`, `UNSPEC` and `UNIX`,
   * where the connection's own address stands.
   */
  source?: ProxyAddress;
  destination?: ProxyAddress;
}

/** What can be wrong with a header. */
export type ProxyHeaderProblem =
  /** Neither signature: the peer did not send a PROXY header. */
  | "SIGNATURE"
  /** Version 2 with a version other than 2 or a command other than LOCAL/PROXY. */
  | "VERSION"
  /** An address family or transport outside the spec (or UDP). */
  | "FAMILY"
  /** A version 2 length too short for its addresses, or over the bound. */
  | "LENGTH"
  /** A version 1 line without `\r\n` within 107 bytes. */
  | "TOO_LONG"
  /** A malformed version 1 line, address or port. */
  | "SYNTAX"
  /** Version 2 TLVs that overrun the header. */
  | "TLV";

/** What {@linkcode parseProxyHeader} found. */
export type ProxyHeaderResult =
  /** A whole header of `size` bytes. */
  | { status: "complete"; header: ProxyHeader; size: number }
  /** So far so good: at least `need` more bytes are needed. */
  | { status: "incomplete"; need: number }
  /** Not a valid header. */
  | { status: "invalid"; problem: ProxyHeaderProblem; message: string };

/**
 * Decodes the PROXY header at the start of `bytes`. Total: whatever the
 * bytes, it returns a result and never reads past them or past
 * {@linkcode MAX_PROXY_HEADER_BYTES}.
 *
 * @param bytes What the peer sent so far (bytes after the header are
 * ignored).
 * @returns The header and its size, how many more bytes are needed at
 * least, or the problem.
 *
 * @example Decode a version 1 header
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseProxyHeader } from "./proxy_header.ts";
 * const line = new TextEncoder().encode("PROXY TCP4 192.0.2.7 10.0.0.1 40000 65432\r\n");
 * const result = parseProxyHeader(line);
 * assert(result.status === "complete");
 * assert.equal(result.header.source?.hostname, "192.0.2.7");
 * assert.equal(result.size, line.length);
 * ```
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyHeaderResult {
  if (bytes.length === 0) return { status: "incomplete", need: MIN_V1_BYTES };
  if (startsLike(bytes, V2_SIGNATURE)) {
    return bytes.length < V2_SIGNATURE.length
      ? { status: "incomplete", need: 16 - bytes.length }
      : parseV2(bytes);
  }
  if (startsLike(bytes, V1_PREFIX)) return parseV1(bytes);
  return invalid("SIGNATURE", "Not a PROXY protocol header");
}

/** Whether `bytes` and `prefix` agree on their common length. */
function startsLike(bytes: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function invalid(
  problem: ProxyHeaderProblem,
  message: string,
): ProxyHeaderResult {
  return { status: "invalid", problem, message };
}

/** Address block sizes of the version 2 families INET, INET6, UNIX. */
const V2_ADDRESS_BYTES: Record<number, number> = { 1: 12, 2: 36, 3: 216 };

function parseV2(bytes: Uint8Array): ProxyHeaderResult {
  if (bytes.length < 16) {
    return { status: "incomplete", need: 16 - bytes.length };
  }
  const versionCommand = bytes[12];
  if (versionCommand >> 4 !== 2) {
    return invalid("VERSION", `Unknown version: ${versionCommand >> 4}`);
  }
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid("VERSION", `Unknown command: ${command}`);
  const family = bytes[13] >> 4;
  const transport = bytes[13] & 0x0f;
  if (family > 3 || transport > 2) {
    return invalid("FAMILY", `Unknown family or transport: ${bytes[13]}`);
  }
  const length = (bytes[14] << 8) | bytes[15];
  if (length > MAX_PROXY_V2_PAYLOAD_BYTES) {
    return invalid("LENGTH", `Header too long: ${length} bytes`);
  }
  if (bytes.length < 16 + length) {
    return { status: "incomplete", need: 16 + length - bytes.length };
  }
  const size = 16 + length;
  if (command === 0) {
    return { status: "complete", header: { version: 2 }, size };
  }
  // PROXY: the addresses must fit, and TLVs must tile the rest exactly.
  const addressBytes = V2_ADDRESS_BYTES[family] ?? 0;
  if (length < addressBytes) {
    return invalid("LENGTH", `Length ${length} too short for family ${family}`);
  }
  for (let at = 16 + addressBytes; at < size;) {
    if (size - at < 3) return invalid("TLV", "TLV header overruns the header");
    const tlvLength = (bytes[at + 1] << 8) | bytes[at + 2];
    at += 3 + tlvLength;
    if (at > size) return invalid("TLV", "TLV value overruns the header");
  }
  if (family === 0 || family === 3) {
    return { status: "complete", header: { version: 2 }, size };
  }
  if (transport !== 1) {
    return invalid("FAMILY", `Not a stream transport: ${transport}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + 16, addressBytes);
  const half = (addressBytes - 4) / 2;
  const text = family === 1 ? ipv4Text : ipv6Text;
  return {
    status: "complete",
    header: {
      version: 2,
      source: {
        hostname: text(bytes.subarray(16, 16 + half)),
        port: view.getUint16(addressBytes - 4),
      },
      destination: {
        hostname: text(bytes.subarray(16 + half, 16 + 2 * half)),
        port: view.getUint16(addressBytes - 2),
      },
    },
    size,
  };
}

function ipv4Text(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  }
  return canonicalIpv6(groups.join(":")) ?? groups.join(":");
}

/** The compressed form of an IPv6 address, or undefined if it is not one. */
function canonicalIpv6(text: string): string | undefined {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(text) || !text.includes(":")) {
    return undefined;
  }
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

const IPV4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const PORT = /^(?:0|[1-9]\d{0,4})$/;
const DECODER = new TextDecoder();

function parseV1(bytes: Uint8Array): ProxyHeaderResult {
  const window = bytes.subarray(0, MAX_PROXY_V1_BYTES);
  const end = window.indexOf(0x0a);
  if (end === -1) {
    if (window.length >= MAX_PROXY_V1_BYTES) {
      return invalid("TOO_LONG", "No line end within 107 bytes");
    }
    const need = window.at(-1) === 0x0d ? 1 : 2;
    return {
      status: "incomplete",
      need: Math.min(
        Math.max(need, MIN_V1_BYTES - window.length),
        MAX_PROXY_V1_BYTES - window.length,
      ),
    };
  }
  if (end < 1 || window[end - 1] !== 0x0d) {
    return invalid("SYNTAX", "Line does not end with CR LF");
  }
  const size = end + 1;
  // Only printable ASCII between the prefix and the CR LF.
  for (let i = 0; i < end - 1; i++) {
    if (window[i] < 0x20 || window[i] > 0x7e) {
      return invalid("SYNTAX", "Unprintable byte in the line");
    }
  }
  const fields = DECODER.decode(window.subarray(0, end - 1)).split(" ");
  if (fields[1] === "UNKNOWN") {
    return { status: "complete", header: { version: 1 }, size };
  }
  if (fields.length !== 6 || (fields[1] !== "TCP4" && fields[1] !== "TCP6")) {
    return invalid("SYNTAX", "Expected TCP4, TCP6 or UNKNOWN and 4 fields");
  }
  const [, family, src, dst, sport, dport] = fields;
  const host = (text: string): string | undefined =>
    family === "TCP4"
      ? IPV4.test(text) ? text : undefined
      : text.includes(".")
      ? undefined
      : canonicalIpv6(text);
  const source = host(src);
  const destination = host(dst);
  if (source === undefined || destination === undefined) {
    return invalid("SYNTAX", `Bad ${family} address`);
  }
  const port = (text: string): number =>
    PORT.test(text) && Number(text) <= 65535 ? Number(text) : -1;
  const sourcePort = port(sport);
  const destinationPort = port(dport);
  if (sourcePort < 0 || destinationPort < 0) {
    return invalid("SYNTAX", "Bad port");
  }
  return {
    status: "complete",
    header: {
      version: 1,
      source: { hostname: source, port: sourcePort },
      destination: { hostname: destination, port: destinationPort },
    },
    size,
  };
}

/** What {@linkcode readProxyHeader} got. */
export type ProxyReadResult =
  | { status: "complete"; header: ProxyHeader }
  | { status: "invalid"; problem: ProxyHeaderProblem; message: string }
  /** The stream ended: after `received` bytes (0: nothing was sent). */
  | { status: "ended"; received: number };

/**
 * Reads one PROXY header from `reader`, asking each time for no more bytes
 * than {@linkcode parseProxyHeader} says it needs, so nothing past the
 * header is consumed. Reads at most {@linkcode MAX_PROXY_HEADER_BYTES}.
 * Time is the caller's to bound (close the connection on a deadline).
 *
 * @param reader The connection (or a reader over it).
 * @returns The header, the problem, or the end of the stream.
 *
 * @example Read a version 2 LOCAL header (a health check)
 * ```ts
 * import assert from "node:assert/strict";
 * import { readProxyHeader } from "./proxy_header.ts";
 * const bytes = new Uint8Array([13, 10, 13, 10, 0, 13, 10, 81, 85, 73, 84, 10, 0x20, 0, 0, 0]);
 * let at = 0;
 * const result = await readProxyHeader({
 *   read(p) {
 *     const n = Math.min(p.length, bytes.length - at);
 *     p.set(bytes.subarray(at, at + n));
 *     at += n;
 *     return Promise.resolve(n === 0 ? null : n);
 *   },
 * });
 * assert(result.status === "complete" && result.header.source === undefined);
 * ```
 */
export async function readProxyHeader(
  reader: ByteReader,
): Promise<ProxyReadResult> {
  const buffer = new Uint8Array(MAX_PROXY_HEADER_BYTES);
  let have = 0;
  while (true) {
    const result = parseProxyHeader(buffer.subarray(0, have));
    if (result.status === "complete") {
      return { status: "complete", header: result.header };
    }
    if (result.status === "invalid") return result;
    const n = await reader.read(
      buffer.subarray(have, Math.min(have + result.need, buffer.length)),
    );
    if (n === null) return { status: "ended", received: have };
    have += n;
  }
}
