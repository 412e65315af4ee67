import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { ZeroCopySocket } from "./zero_copy.ts";
import { IoActivity } from "./idle.ts";
import { strictLibc } from "./dir_handle.ts";
import { hasOpenssl, makeTestPki } from "../tests/_util/security.ts";

const available = strictLibc() !== undefined;
const ignore = !available;
const why = available ? "" : " (ignored: needs --allow-ffi on Linux)";

/** A file of `size` patterned bytes in a fresh temp folder. */
async function patternFile(size: number): Promise<{
  path: string;
  bytes: Uint8Array;
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 12)) & 0xff;
  const path = `${dir}/f.bin`;
  await Deno.writeFile(path, bytes);
  return {
    path,
    bytes,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Reads `conn` until it ends or `limit` bytes came. */
async function readAll(conn: Deno.Conn, limit = Infinity): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(256 * 1024);
  while (total < limit) {
    const n = await conn.read(buffer);
    if (n === null) break;
    parts.push(buffer.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function connectedPair(
  listener: Deno.Listener,
): Promise<[client: Deno.Conn, server: Deno.Conn]> {
  return await Promise.all([
    Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    }),
    listener.accept(),
  ]);
}

function sendContext(signal = new AbortController().signal) {
  return { signal, activity: new IoActivity() };
}

Deno.test({
  name:
    `ZeroCopySocket sends 24 MiB byte-exact in several calls, waiting for room${why}`,
  ignore,
  async fn() {
    await using file = await patternFile(24 * 1024 * 1024 + 13);
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const [client, server] = await connectedPair(listener);
    const socket = ZeroCopySocket.of(server);
    assert(socket !== undefined, "found the connection's socket");
    const fd = openSync(file.path, "r");
    try {
      const received = readAll(client, file.bytes.length);
      let calls = 0;
      const sent = await socket.sendFile(fd, 0, file.bytes.length, {
        ...sendContext(),
        onProgress: () => calls++,
      });
      assert.equal(sent, file.bytes.length);
      assert(calls > 1, `more than one sendfile call (${calls})`);
      assert.deepEqual(await received, file.bytes);
    } finally {
      socket.close();
      closeSync(fd);
      server.close();
      client.close();
    }
  },
});

Deno.test({
  name:
    `ZeroCopySocket sends from an offset and stops where the file ends${why}`,
  ignore,
  async fn() {
    await using file = await patternFile(100_000);
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const [client, server] = await connectedPair(listener);
    const socket = ZeroCopySocket.of(server)!;
    const fd = openSync(file.path, "r");
    try {
      assert.equal(
        await socket.sendFile(fd, 99_000, 5_000, sendContext()),
        1_000,
      );
      assert.equal(await socket.sendFile(fd, 0, 0, sendContext()), 0);
      socket.close();
      server.close();
      // Only Deno's descriptor and the duplicate held the socket: closing
      // both ends the connection, so the client sees the end.
      assert.deepEqual(await readAll(client), file.bytes.subarray(99_000));
    } finally {
      socket.close();
      closeSync(fd);
      client.close();
    }
  },
});

Deno.test({
  name: `ZeroCopySocket finds each connection's own socket among several${why}`,
  ignore,
  async fn() {
    await using file = await patternFile(10);
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const pairs = [];
    for (let i = 0; i < 5; i++) pairs.push(await connectedPair(listener));
    const fd = openSync(file.path, "r");
    try {
      for (const [i, [, server]] of pairs.entries()) {
        const socket = ZeroCopySocket.of(server)!;
        await socket.sendFile(fd, i, 1, sendContext());
        socket.close();
        server.close();
      }
      for (const [i, [client]] of pairs.entries()) {
        assert.deepEqual(await readAll(client), file.bytes.subarray(i, i + 1));
      }
    } finally {
      closeSync(fd);
      for (const [client] of pairs) client.close();
    }
  },
});

Deno.test({
  name:
    `ZeroCopySocket stops a send to a stalled peer once the session closes${why}`,
  ignore,
  async fn() {
    await using file = await patternFile(32 * 1024 * 1024);
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const [client, server] = await connectedPair(listener);
    const socket = ZeroCopySocket.of(server)!;
    const fd = openSync(file.path, "r");
    const closed = new AbortController();
    const activity = new IoActivity();
    try {
      // The client reads nothing: the send fills the socket buffers, then
      // waits for room; the first progress report means it is under way.
      let started!: () => void;
      const underWay = new Promise<void>((resolve) => started = resolve);
      const sending = socket.sendFile(fd, 0, file.bytes.length, {
        signal: closed.signal,
        activity,
        onProgress: () => started(),
      });
      await underWay;
      closed.abort();
      await assert.rejects(sending, Deno.errors.Interrupted);
    } finally {
      socket.close();
      closeSync(fd);
      server.close();
    }
    // The duplicate is closed: the client sees the connection end.
    const rest = await readAll(client);
    assert(rest.length < file.bytes.length, "the send stopped early");
    assert.deepEqual(rest, file.bytes.subarray(0, rest.length));
    client.close();
  },
});

const openssl = await hasOpenssl();

Deno.test({
  name:
    `ZeroCopySocket refuses a TLS connection (sendfile would bypass the encryption)${
      openssl ? "" : " (ignored: openssl is missing)"
    }`,
  ignore: !openssl,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      const pki = await makeTestPki(dir);
      using listener = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        cert: pki.certPem,
        key: pki.keyPem,
      });
      const [client, server] = await Promise.all([
        Deno.connectTls({
          hostname: "127.0.0.1",
          port: listener.addr.port,
          caCerts: [pki.caPem],
        }),
        listener.accept(),
      ]);
      try {
        await Promise.all([client.handshake(), server.handshake()]);
        assert.equal(ZeroCopySocket.of(server), undefined);
        // The plain socket under it would have matched: the TLS check is
        // what refuses it.
        assert.equal(server.localAddr.transport, "tcp");
      } finally {
        server.close();
        client.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
