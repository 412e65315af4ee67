import assert from "node:assert/strict";
import { encodeMessage, PROTOCOL_VERSION, writeAll } from "../protocol.ts";
import { serve } from "../server.ts";
import { RawClient, withServer } from "./_util/server.ts";
import { PROXY_V2_LOCAL, proxyV1, proxyV2Inet } from "./_util/proxy_header.ts";
import { readUntilClosed, runScript, SERVER_SCRIPT } from "./_util/util.ts";
import { rawAuth } from "./_util/security.ts";

/** A client's opening: HELLO and DIGESTS (SHA-256). */
function helloBytes(): Uint8Array {
  return new Uint8Array([
    ...encodeMessage({
      type: "hello",
      minVersion: PROTOCOL_VERSION,
      maxVersion: PROTOCOL_VERSION,
      flags: 0,
      nonce: crypto.getRandomValues(new Uint8Array(32)),
    }),
    ...encodeMessage({ type: "digests", algorithms: ["sha256"] }),
  ]);
}

Deno.test("serve() with proxyProtocol logs the client a version 2 header names", async () => {
  await withServer(
    { proxyProtocol: true, files: { "a.txt": "abc" } },
    async ({ port, logs, waitForLog }) => {
      const client = await RawClient.connect(port);
      try {
        // Header and HELLO in one write: the server must not eat the HELLO.
        await client.sendBytes(
          new Uint8Array([
            ...proxyV2Inet("203.0.113.9", 4242),
            ...helloBytes(),
          ]),
        );
        await client.expect("hello");
        await client.expect("digests");
        const got = await client.get("a.txt");
        assert.equal(new TextDecoder().decode(got.bytes), "abc");
      } finally {
        client.close();
      }
      const event = await waitForLog((e) => e.request === "GET");
      assert.equal(event.peer, "203.0.113.9:4242");
      assert.equal(logs.filter((e) => e.request === "PROXY").length, 0);
    },
  );
});

Deno.test("serve() with proxyProtocol takes an IPv6 client from a version 1 line", async () => {
  await withServer(
    { proxyProtocol: true, files: { "a.txt": "abc" } },
    async ({ port, waitForLog }) => {
      const client = await RawClient.connect(port);
      try {
        await client.sendBytes(proxyV1("TCP6 2001:db8::7 ::1 1234 65432"));
        await client.hello();
        await client.get("a.txt");
      } finally {
        client.close();
      }
      const event = await waitForLog((e) => e.request === "GET");
      assert.equal(event.peer, "[2001:db8::7]:1234");
    },
  );
});

Deno.test("serve() with proxyProtocol refuses a connection without a header: one log line, no answer", async () => {
  await withServer(
    { proxyProtocol: true },
    async ({ port, logs, waitForLog }) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await writeAll(conn, helloBytes());
        assert.deepEqual(await readUntilClosed(conn), new Uint8Array(0));
      } finally {
        conn.close();
      }
      const event = await waitForLog((e) => e.request === "PROXY");
      assert.equal(event.result, "BAD_REQUEST");
      assert.equal(event.peer.startsWith("127.0.0.1:"), true);
      assert.equal(logs.length, 1, JSON.stringify(logs));
    },
  );
});

Deno.test("serve() with proxyProtocol closes a header that never completes at the handshake timeout", async () => {
  await withServer(
    { proxyProtocol: true, handshakeTimeoutMs: 200 },
    async ({ port, waitForLog }) => {
      const client = await RawClient.connect(port);
      try {
        await client.sendBytes(proxyV2Inet("192.0.2.1", 1).subarray(0, 20));
        assert(await client.closedByPeer());
      } finally {
        client.close();
      }
      const event = await waitForLog((e) => e.request === "PROXY");
      assert.equal(event.result, "TIMEOUT");
    },
  );
});

Deno.test("serve() with proxyProtocol serves LOCAL connections (health checks) as the proxy's own, silently", async () => {
  await withServer(
    { proxyProtocol: true, files: { "a.txt": "abc" } },
    async ({ port, logs, waitForLog }) => {
      // A health check: the LOCAL header, then close.
      const check = await Deno.connect({ hostname: "127.0.0.1", port });
      await writeAll(check, PROXY_V2_LOCAL);
      check.close();
      const client = await RawClient.connect(port);
      try {
        await client.sendBytes(PROXY_V2_LOCAL);
        await client.hello();
        await client.get("a.txt");
      } finally {
        client.close();
      }
      const event = await waitForLog((e) => e.request === "GET");
      assert(event.peer.startsWith("127.0.0.1:"), event.peer);
      assert.deepEqual(logs.map((e) => e.request), ["GET"]);
    },
  );
});

Deno.test("serve() with proxyProtocol counts connections by the header's client: BUSY names it", async () => {
  await withServer(
    { proxyProtocol: true, maxConnections: 1, allowUpload: true },
    async ({ port, waitForLog }) => {
      const first = await RawClient.connect(port);
      let second: RawClient | undefined;
      try {
        await first.sendBytes(proxyV2Inet("192.0.2.10", 1000));
        await first.hello();
        // In a request (an idle session would make room for the second).
        await first.send({
          type: "put",
          path: "a.bin",
          size: 10,
          overwrite: false,
          resume: false,
        });
        await first.expect("ready");
        second = await RawClient.connect(port);
        await second.sendBytes(proxyV2Inet("192.0.2.20", 2000));
        await second.expectError("BUSY");
      } finally {
        first.close();
        second?.close();
      }
      const event = await waitForLog((e) => e.result === "BUSY");
      assert.equal(event.peer, "192.0.2.20:2000");
    },
  );
});

Deno.test("serve() with proxyProtocol throttles failed authentication by the header's address", async () => {
  const base = 250;
  await withServer(
    { proxyProtocol: true, token: "the-token", authFailureDelayMs: base },
    async ({ port }) => {
      const fail = async (host: string): Promise<number> => {
        const raw = await RawClient.connect(port);
        try {
          await raw.sendBytes(proxyV2Inet(host, 5000));
          const { reply, ms } = await rawAuth(raw, "wrong");
          assert.equal(reply, "UNAUTHORIZED");
          return ms;
        } finally {
          raw.close();
        }
      };
      // Three clients behind one proxy: each is a first failure.
      for (const host of ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) {
        const ms = await fail(host);
        assert(ms < 4 * base, `${host} waited ${ms} ms, as if it were one`);
      }
      // The same client again: its delay has doubled twice.
      await fail("198.51.100.9");
      await fail("198.51.100.9");
      const third = await fail("198.51.100.9");
      assert(third >= 4 * base - 1, `third failure waited ${third} ms`);
    },
  );
});

Deno.test("serve() refuses proxyProtocol with TLS, and so does server.ts", async () => {
  await assert.rejects(
    serve({ port: 0, proxyProtocol: true, cert: "x", key: "y" }),
    (error: Error) =>
      error instanceof TypeError &&
      /cannot be combined with TLS/.test(error.message),
  );
  const result = await runScript(SERVER_SCRIPT, [
    "--proxy-protocol",
    "--cert",
    "c.pem",
    "--key",
    "k.pem",
  ]);
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /^ferry-server: --proxy-protocol cannot be combined with --cert/,
  );
});
