import assert from "node:assert/strict";
import {
  MAX_PROXY_HEADER_BYTES,
  MAX_PROXY_V1_BYTES,
  parseProxyHeader,
  type ProxyHeaderResult,
  readProxyHeader,
} from "./proxy_header.ts";
import { Prng } from "../tests/_util/util.ts";
import { PROXY_V2_LOCAL, proxyV2 } from "../tests/_util/proxy_header.ts";

function text(line: string): Uint8Array {
  return new TextEncoder().encode(line);
}

const v2 = proxyV2;
const V2_INET = v2(1, 0x11, [
  192,
  0,
  2,
  7,
  10,
  0,
  0,
  1,
  0x9c,
  0x40,
  0xff,
  0x98,
]);
const V2_INET6 = v2(1, 0x21, [
  0x20,
  0x01,
  0x0d,
  0xb8,
  ...new Array(11).fill(0),
  1,
  ...new Array(15).fill(0),
  1,
  0,
  80,
  1,
  0xbb,
]);
const V2_LOCAL = PROXY_V2_LOCAL;
// An INET header with two TLVs (a unique id and a NOOP).
const V2_TLVS = v2(1, 0x11, [
  127,
  0,
  0,
  2,
  127,
  0,
  0,
  1,
  0,
  1,
  0,
  2,
  0x05,
  0,
  3,
  97,
  98,
  99,
  0x04,
  0,
  0,
]);
const V1_TCP4 = text("PROXY TCP4 192.0.2.7 10.0.0.1 40000 65432\r\n");
const V1_TCP6 = text("PROXY TCP6 2001:DB8:0:0::1 ::1 443 65432\r\n");
const V1_UNKNOWN = text("PROXY UNKNOWN whatever follows\r\n");
const VALID = [
  V2_INET,
  V2_INET6,
  V2_LOCAL,
  V2_TLVS,
  V1_TCP4,
  V1_TCP6,
  V1_UNKNOWN,
];

function complete(result: ProxyHeaderResult) {
  assert.equal(result.status, "complete", JSON.stringify(result));
  if (result.status !== "complete") throw new Error("unreachable");
  return result;
}

function problemOf(bytes: Uint8Array): string {
  const result = parseProxyHeader(bytes);
  assert.equal(result.status, "invalid", JSON.stringify(result));
  return result.status === "invalid" ? result.problem : "";
}

Deno.test("parseProxyHeader() decodes version 1 TCP4, TCP6 and UNKNOWN lines", () => {
  const tcp4 = complete(parseProxyHeader(V1_TCP4));
  assert.deepEqual(tcp4.header, {
    version: 1,
    source: { hostname: "192.0.2.7", port: 40000 },
    destination: { hostname: "10.0.0.1", port: 65432 },
  });
  assert.equal(tcp4.size, V1_TCP4.length);
  const tcp6 = complete(parseProxyHeader(V1_TCP6));
  assert.deepEqual(tcp6.header.source, { hostname: "2001:db8::1", port: 443 });
  const unknown = complete(parseProxyHeader(V1_UNKNOWN));
  assert.deepEqual(unknown.header, { version: 1 });
});

Deno.test("parseProxyHeader() decodes version 2 INET, INET6, TLVs and LOCAL", () => {
  assert.deepEqual(complete(parseProxyHeader(V2_INET)).header, {
    version: 2,
    source: { hostname: "192.0.2.7", port: 40000 },
    destination: { hostname: "10.0.0.1", port: 65432 },
  });
  assert.deepEqual(complete(parseProxyHeader(V2_INET6)).header.source, {
    hostname: "2001:db8::1",
    port: 80,
  });
  const tlvs = complete(parseProxyHeader(V2_TLVS));
  assert.equal(tlvs.size, V2_TLVS.length);
  assert.equal(tlvs.header.source?.hostname, "127.0.0.2");
  assert.deepEqual(complete(parseProxyHeader(V2_LOCAL)).header, { version: 2 });
});

Deno.test("parseProxyHeader() ignores what follows the header", () => {
  for (const header of VALID) {
    const followed = new Uint8Array([...header, 1, 0, 0, 0, 10, 13, 10]);
    assert.equal(complete(parseProxyHeader(followed)).size, header.length);
  }
});

Deno.test("parseProxyHeader() asks for more, never past the header, on every truncation", () => {
  for (const header of VALID) {
    for (let n = 0; n < header.length; n++) {
      const result = parseProxyHeader(header.subarray(0, n));
      assert.equal(result.status, "incomplete", `${n} of ${header.length}`);
      if (result.status !== "incomplete") continue;
      assert(result.need >= 1);
      assert(n + result.need <= header.length, `asks past the header at ${n}`);
    }
  }
});

Deno.test("parseProxyHeader() names each malformed header's problem", () => {
  assert.equal(problemOf(new Uint8Array([1, 0, 0, 0, 12])), "SIGNATURE");
  assert.equal(problemOf(text("GET / HTTP/1.1\r\n")), "SIGNATURE");
  assert.equal(problemOf(text("PROXX")), "SIGNATURE");
  const version3 = V2_INET.slice();
  version3[12] = 0x31;
  assert.equal(problemOf(version3), "VERSION");
  const command2 = V2_INET.slice();
  command2[12] = 0x22;
  assert.equal(problemOf(command2), "VERSION");
  const family4 = V2_INET.slice();
  family4[13] = 0x41;
  assert.equal(problemOf(family4), "FAMILY");
  const udp = V2_INET.slice();
  udp[13] = 0x12;
  assert.equal(problemOf(udp), "FAMILY");
  assert.equal(problemOf(v2(1, 0x21, new Array(12).fill(0))), "LENGTH");
  const huge = V2_LOCAL.slice();
  huge[14] = 0xff;
  assert.equal(problemOf(huge), "LENGTH");
  assert.equal(
    problemOf(v2(1, 0x11, [...new Array(12).fill(1), 0x05, 0, 9, 1])),
    "TLV",
  );
  assert.equal(problemOf(v2(1, 0x11, [...new Array(12).fill(1), 0x05])), "TLV");
  assert.equal(
    problemOf(text(`PROXY TCP4 ${"1".repeat(MAX_PROXY_V1_BYTES)}`)),
    "TOO_LONG",
  );
  for (
    const line of [
      "PROXY TCP4 256.0.0.1 10.0.0.1 1 2\r\n",
      "PROXY TCP4 01.0.0.1 10.0.0.1 1 2\r\n",
      "PROXY TCP4 1.2.3.4 10.0.0.1 65536 2\r\n",
      "PROXY TCP4 1.2.3.4 10.0.0.1 01 2\r\n",
      "PROXY TCP4 ::1 ::1 1 2\r\n",
      "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
      "PROXY TCP6 ::g ::1 1 2\r\n",
      "PROXY TCP4 1.2.3.4 10.0.0.1 1\r\n",
      "PROXY TCP4  1.2.3.4 10.0.0.1 1 2\r\n",
      "PROXY UDP4 1.2.3.4 10.0.0.1 1 2\r\n",
      "PROXY TCP4 1.2.3.4 10.0.0.1 1 2\n",
      "PROXY TCP4 1.2.3.4\t10.0.0.1 1 2\r\n",
    ]
  ) {
    assert.equal(problemOf(text(line)), "SYNTAX", line);
  }
});

/** A reader over `bytes` that hands out at most `chunk` bytes a read. */
function chunkedReader(bytes: Uint8Array, chunk: number) {
  let at = 0;
  return {
    get consumed() {
      return at;
    },
    read(p: Uint8Array): Promise<number | null> {
      const n = Math.min(p.length, chunk, bytes.length - at);
      if (n === 0) return Promise.resolve(null);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
}

Deno.test("readProxyHeader() consumes exactly the header, in any chunking", async () => {
  for (const header of VALID) {
    for (const chunk of [1, 3, 4096]) {
      const reader = chunkedReader(
        new Uint8Array([...header, 1, 2, 3, 4]),
        chunk,
      );
      const result = await readProxyHeader(reader);
      assert.equal(result.status, "complete");
      assert.equal(reader.consumed, header.length);
    }
  }
});

Deno.test("readProxyHeader() reports the end of the stream and a missing header", async () => {
  assert.deepEqual(
    await readProxyHeader(chunkedReader(new Uint8Array(0), 10)),
    { status: "ended", received: 0 },
  );
  assert.deepEqual(
    await readProxyHeader(chunkedReader(V2_INET.subarray(0, 20), 10)),
    { status: "ended", received: 20 },
  );
  const reader = chunkedReader(new Uint8Array([1, 0, 0, 0, 20, 9, 9]), 4096);
  const result = await readProxyHeader(reader);
  assert.equal(result.status, "invalid");
  assert(reader.consumed <= 15, "reads no more than the shortest header");
});

Deno.test("parseProxyHeader() stays total on 20000 seeded malformed headers", async () => {
  const prng = new Prng(14);
  const counts = { complete: 0, incomplete: 0, invalid: 0 };
  for (let i = 0; i < 20_000; i++) {
    const bytes = mutate(prng, prng.pick(VALID));
    const result = parseProxyHeader(bytes);
    counts[result.status]++;
    if (result.status === "complete") {
      assert(
        result.size <= bytes.length && result.size <= MAX_PROXY_HEADER_BYTES,
      );
      for (const address of [result.header.source, result.header.destination]) {
        if (address === undefined) continue;
        assert(Number.isInteger(address.port) && address.port <= 65535);
        assert.doesNotThrow(() =>
          new URL(
            address.hostname.includes(":")
              ? `http://[${address.hostname}]/`
              : `http://${address.hostname}/`,
          )
        );
      }
      // The same header alone decodes the same.
      assert.deepEqual(
        parseProxyHeader(bytes.subarray(0, result.size)),
        result,
      );
    } else if (result.status === "incomplete") {
      assert(result.need >= 1);
      assert(bytes.length + result.need <= MAX_PROXY_HEADER_BYTES);
    } else {
      assert.equal(typeof result.message, "string");
    }
    if (i % 100 === 0) {
      const reader = chunkedReader(bytes, 1 + prng.int(8));
      const read = await readProxyHeader(reader);
      assert(reader.consumed <= MAX_PROXY_HEADER_BYTES);
      if (read.status === "complete" && result.status === "complete") {
        assert.equal(reader.consumed, result.size);
      }
    }
  }
  // The mutations reach every outcome.
  assert(
    counts.complete > 100 && counts.incomplete > 100 && counts.invalid > 100,
  );
});

/** A valid header, damaged one of several ways. */
function mutate(prng: Prng, header: Uint8Array): Uint8Array {
  const bytes = header.slice();
  switch (prng.int(8)) {
    case 0: // truncation
      return bytes.subarray(0, prng.int(bytes.length));
    case 1: // a flipped byte (signature, version, family, address, ...)
      bytes[prng.int(bytes.length)] ^= 1 << prng.int(8);
      return bytes;
    case 2: { // a wrong version 2 length
      if (bytes[0] === 13) {
        bytes[14] = prng.int(256) & (prng.chance(0.5) ? 0x03 : 0xff);
        bytes[15] = prng.int(256);
      }
      return bytes;
    }
    case 3: // an unknown family, transport or command
      if (bytes[0] === 13) bytes[12 + prng.int(2)] = prng.int(256);
      return bytes;
    case 4: // the LOCAL command on any header
      if (bytes[0] === 13) bytes[12] = 0x20;
      return bytes;
    case 5: // random bytes
      return prng.bytes(prng.int(64));
    case 6: { // bytes inserted
      const at = prng.int(bytes.length);
      return new Uint8Array([
        ...bytes.subarray(0, at),
        ...prng.bytes(1 + prng.int(120)),
        ...bytes.subarray(at),
      ]);
    }
    default: // trailing data
      return new Uint8Array([...bytes, ...prng.bytes(prng.int(32))]);
  }
}
