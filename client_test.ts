import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BULK_BUFFER_BYTES } from "./_common/copy.ts";
import { classicGet, connect, FerryClient } from "./client.ts";
import {
  DEFAULT_DIGEST,
  DIGEST_ALGORITHMS,
  encodeMessage,
  FrameReader,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "./protocol.ts";
import {
  BufferWriter,
  freePort,
  runClient,
  startFlippingProxy,
  withFerryServer,
  writeRandomFile,
} from "./tests/_util/client.ts";
import {
  assertFerryError,
  bytesEqual,
  CLIENT_SCRIPT,
  digestHex,
  exists,
  hasTerminalScript,
  randomBytes,
  sha256Hex,
  terminalCommand,
  withTempDir,
} from "./tests/_util/util.ts";

const MIB = 1024 * 1024;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

Deno.test("FerryClient get() and put() move files of every edge size byte for byte", async (t) => {
  await withFerryServer({ allowUpload: true }, async ({ port, dir, root }) => {
    const local = `${dir}/local`;
    await Deno.mkdir(local);
    const sizes = [
      0,
      1,
      BULK_BUFFER_BYTES - 1,
      BULK_BUFFER_BYTES,
      BULK_BUFFER_BYTES + 1,
      10 * MIB,
    ];
    for (const algorithm of DIGEST_ALGORITHMS) {
      await using client = await connect({ port, digest: algorithm });
      assert.equal(client.version, PROTOCOL_VERSION);
      assert.equal(client.digest, algorithm);
      for (const size of sizes) {
        await t.step(`get ${size} bytes (${algorithm})`, async () => {
          const data = await writeRandomFile(`${root}/g${size}.bin`, size);
          const mtime = new Date(Date.UTC(2020, 0, 2, 3, 4, 5));
          await Deno.utime(`${root}/g${size}.bin`, mtime, mtime);
          const dest = `${local}/g${size}.${algorithm}.bin`;
          let lastProgress = -1;
          const result = await client.get(`g${size}.bin`, dest, {
            onProgress(done, total) {
              assert.equal(total, size);
              assert.ok(done > lastProgress);
              lastProgress = done;
            },
          });
          assert.deepEqual(
            {
              path: result.path,
              bytes: result.bytes,
              algorithm: result.algorithm,
              digest: result.digest,
            },
            {
              path: `g${size}.bin`,
              bytes: size,
              algorithm,
              digest: await digestHex(data, algorithm),
            },
          );
          // The deprecated field is there for SHA-256 sessions only.
          assert.equal(
            result.sha256,
            algorithm === "sha256" ? sha256Hex(data) : undefined,
          );
          assert.ok(bytesEqual(await Deno.readFile(dest), data));
          assert.equal(await exists(`${dest}.part`), false);
          assert.equal(
            (await Deno.stat(dest)).mtime?.getTime(),
            mtime.getTime(),
          );
          if (size > 0) assert.equal(lastProgress, size);
        });
        await t.step(`put ${size} bytes (${algorithm})`, async () => {
          const data = await writeRandomFile(`${local}/p${size}.bin`, size);
          const result = await client.put(
            `${local}/p${size}.bin`,
            `p${size}.bin`,
          );
          assert.equal(result.bytes, size);
          assert.equal(result.algorithm, algorithm);
          assert.equal(result.digest, await digestHex(data, algorithm));
          assert.ok(
            bytesEqual(await Deno.readFile(`${root}/p${size}.bin`), data),
          );
          await Deno.remove(`${root}/p${size}.bin`);
        });
      }
    }
  });
});

Deno.test("FerryClient list() and stat() describe files and folders", async () => {
  await withFerryServer({}, async ({ port, root }) => {
    await Deno.mkdir(`${root}/docs/deep`, { recursive: true });
    await Deno.writeTextFile(`${root}/a.txt`, "abc");
    await Deno.writeTextFile(`${root}/docs/b.txt`, "hello");
    await Deno.writeTextFile(`${root}/docs/deep/c.txt`, "");
    await using client = await connect({ port });

    const top = await client.list();
    assert.deepEqual(
      top.map(({ name, kind, size }) => ({ name, kind, size }))
        .sort((x, y) => x.name.localeCompare(y.name)),
      [
        { name: "a.txt", kind: "file", size: 3 },
        { name: "docs", kind: "dir", size: 0 },
      ],
    );
    const docs = await client.list("docs");
    assert.deepEqual(docs.map((entry) => entry.name).sort(), ["b.txt", "deep"]);

    const all = await client.list("", { recursive: true });
    const names = all.map((entry) => entry.name);
    assert.deepEqual([...names].sort(), [
      "a.txt",
      "docs",
      "docs/b.txt",
      "docs/deep",
      "docs/deep/c.txt",
    ]);
    // Folders come before their contents.
    assert.ok(names.indexOf("docs") < names.indexOf("docs/b.txt"));
    assert.ok(names.indexOf("docs/deep") < names.indexOf("docs/deep/c.txt"));

    const info = await client.stat("docs/b.txt");
    assert.equal(info.name, "b.txt");
    assert.equal(info.kind, "file");
    assert.equal(info.size, 5);
    assert.equal(
      info.mtime,
      (await Deno.stat(`${root}/docs/b.txt`)).mtime?.getTime(),
    );
    assert.equal((await client.stat("docs")).kind, "dir");
    assert.equal((await client.stat("")).kind, "dir");
  });
});

Deno.test("FerryClient reports NOT_FOUND and stays usable", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    await Deno.writeTextFile(`${root}/a.txt`, "abc");
    await using client = await connect({ port });
    const dest = `${dir}/nope.txt`;
    assertFerryError(
      await rejection(client.get("nope.txt", dest)),
      "NOT_FOUND",
    );
    assert.equal(await exists(dest), false);
    assert.equal(await exists(`${dest}.part`), false);
    assertFerryError(await rejection(client.stat("nope.txt")), "NOT_FOUND");
    assertFerryError(await rejection(client.list("nope")), "NOT_FOUND");
    assert.equal((await client.stat("a.txt")).size, 3);
  });
});

Deno.test("FerryClient get() refuses an existing destination unless overwrite is set", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    await Deno.writeTextFile(`${root}/a.txt`, "new");
    const dest = `${dir}/a.txt`;
    await Deno.writeTextFile(dest, "old");
    await using client = await connect({ port });
    assertFerryError(await rejection(client.get("a.txt", dest)), "EXISTS");
    assert.equal(await Deno.readTextFile(dest), "old");
    assert.equal(await exists(`${dest}.part`), false);
    await client.get("a.txt", dest, { overwrite: true });
    assert.equal(await Deno.readTextFile(dest), "new");
  });
});

Deno.test("FerryClient put() gets EXISTS unless overwrite is set", async () => {
  await withFerryServer({ allowUpload: true }, async ({ port, dir, root }) => {
    await Deno.writeTextFile(`${root}/a.txt`, "old");
    await Deno.writeTextFile(`${dir}/a.txt`, "new");
    await using client = await connect({ port });
    assertFerryError(
      await rejection(client.put(`${dir}/a.txt`, "a.txt")),
      "EXISTS",
    );
    assert.equal(await Deno.readTextFile(`${root}/a.txt`), "old");
    await client.put(`${dir}/a.txt`, "a.txt", { overwrite: true });
    assert.equal(await Deno.readTextFile(`${root}/a.txt`), "new");
    assertFerryError(
      await rejection(client.put(`${dir}/missing.txt`, "m.txt")),
      "LOCAL",
      /Local file not found/,
    );
    assertFerryError(await rejection(client.put(dir, "d")), "LOCAL");
    assert.equal(await Deno.readTextFile(`${root}/a.txt`), "new");
  });
});

Deno.test("FerryClient put() is FORBIDDEN by a read-only server", async () => {
  await withFerryServer({ allowUpload: false }, async ({ port, dir, root }) => {
    await Deno.writeTextFile(`${dir}/a.txt`, "data");
    await using client = await connect({ port });
    assertFerryError(
      await rejection(client.put(`${dir}/a.txt`, "a.txt")),
      "FORBIDDEN",
    );
    assert.equal(await exists(`${root}/a.txt`), false);
    assert.deepEqual(await client.list(), []);
  });
});

Deno.test("FerryClient get() through a byte-flipping proxy fails INTEGRITY and keeps nothing", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    await writeRandomFile(`${root}/big.bin`, 100_000);
    // Frame headers take a few dozen bytes: offset 50000 is file data.
    await using proxy = startFlippingProxy(port, "toClient", 50_000);
    await using client = await connect({ port: proxy.port });
    const dest = `${dir}/big.bin`;
    assertFerryError(
      await rejection(client.get("big.bin", dest)),
      "INTEGRITY",
      /server's xxh3-128 is [0-9a-f]{32}, the received bytes' is [0-9a-f]{32}$/,
    );
    assert.equal(await exists(dest), false);
    assert.equal(await exists(`${dest}.part`), false);
    // The frames are still in step: the session goes on.
    assert.equal((await client.stat("big.bin")).size, 100_000);
  });
});

Deno.test("FerryClient put() through a byte-flipping proxy fails INTEGRITY and the server keeps nothing", async () => {
  await withFerryServer({ allowUpload: true }, async ({ port, dir, root }) => {
    await writeRandomFile(`${dir}/big.bin`, 100_000);
    await using proxy = startFlippingProxy(port, "toServer", 50_000);
    await using client = await connect({ port: proxy.port });
    assertFerryError(
      await rejection(client.put(`${dir}/big.bin`, "big.bin")),
      "INTEGRITY",
    );
    assert.equal(await exists(`${root}/big.bin`), false);
    assert.deepEqual(await client.list(), []);
  });
});

Deno.test("FerryClient get() serves 20 concurrent clients byte for byte", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    const files = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => writeRandomFile(`${root}/f${i}.bin`, 200_000 + i * 1000),
      ),
    );
    await Promise.all(files.map(async (data, i) => {
      await using client = await connect({ port });
      const result = await client.get(`f${i}.bin`, `${dir}/f${i}.bin`);
      assert.equal(result.digest, await digestHex(data));
      assert.ok(bytesEqual(await Deno.readFile(`${dir}/f${i}.bin`), data));
    }));
  });
});

Deno.test("FerryClient runs concurrent calls on one client one after another", async () => {
  await withFerryServer({}, async ({ port, root }) => {
    const files = await Promise.all(
      Array.from(
        { length: 5 },
        (_, i) => writeRandomFile(`${root}/f${i}.bin`, BULK_BUFFER_BYTES + i),
      ),
    );
    await using client = await connect({ port });
    const writers = files.map(() => new BufferWriter());
    const [entries, ...results] = await Promise.all([
      client.list(),
      ...files.map((_, i) => client.get(`f${i}.bin`, writers[i])),
    ]);
    assert.equal((entries as unknown[]).length, 5);
    for (const [i, data] of files.entries()) {
      assert.ok(bytesEqual(writers[i].bytes(), data));
      assert.equal(results[i].digest, await digestHex(data));
    }
  });
});

Deno.test("FerryClient get() streams into a WritableStream, a copy per chunk", async () => {
  await withFerryServer({}, async ({ port, root }) => {
    const data = await writeRandomFile(`${root}/s.bin`, 3 * MIB + 7);
    // Keeps every chunk it is given: a reused buffer would show up here.
    const chunks: Uint8Array[] = [];
    const stream = new WritableStream<Uint8Array>({
      write(chunk) {
        chunks.push(chunk);
      },
    });
    await using client = await connect({ port });
    const result = await client.get("s.bin", stream);
    assert.equal(result.digest, await digestHex(data));
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    assert.ok(bytesEqual(all, data));
    // Released, not closed: the caller can go on writing.
    const writer = stream.getWriter();
    await writer.close();
  });
});

Deno.test("FerryClient get() of 64 MiB keeps memory flat", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    const size = 64 * MIB;
    // Written in pieces so the test itself never holds 64 MiB.
    const expected = createHash("sha256");
    {
      using file = await Deno.open(`${root}/big.bin`, {
        write: true,
        create: true,
      });
      for (let i = 0; i < size / MIB; i++) {
        const piece = randomBytes(MIB);
        expected.update(piece);
        await writeAll(file, piece);
      }
    }
    await using client = await connect({ port, digest: "sha256" });
    // Warm up both sides (their bulk buffers) with a small file first.
    await writeRandomFile(`${root}/small.bin`, 2 * MIB);
    await client.get("small.bin", new BufferWriter());
    // Both the server and the client run in this process: the bound covers
    // both sides' buffers.
    const before = Deno.memoryUsage().rss;
    let peak = before;
    const result = await client.get("big.bin", `${dir}/big.bin`, {
      onProgress() {
        peak = Math.max(peak, Deno.memoryUsage().rss);
      },
    });
    peak = Math.max(peak, Deno.memoryUsage().rss);
    assert.equal(result.digest, expected.digest("hex"));
    assert.equal((await Deno.stat(`${dir}/big.bin`)).size, size);
    const grown = peak - before;
    assert.ok(
      grown < 48 * MIB,
      `rss grew by ${(grown / MIB).toFixed(1)} MiB during a 64 MiB get`,
    );
  });
});

Deno.test("FerryClient rejects pending calls with the abort reason and closes", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    await writeRandomFile(`${root}/big.bin`, 10 * MIB);
    const controller = new AbortController();
    await using client = await connect({ port, signal: controller.signal });
    const reason = new Error("user stopped");
    const error = await rejection(
      client.get("big.bin", `${dir}/big.bin`, {
        onProgress: () => controller.abort(reason),
      }),
    );
    assert.equal(error, reason);
    assert.equal(await exists(`${dir}/big.bin`), false);
    assert.equal(await rejection(client.list()), reason);
  });
});

Deno.test("connect() reports a refused connection", async () => {
  const port = freePort();
  assertFerryError(
    await rejection(connect({ port })),
    "CONNECTION",
    new RegExp(`^Connection refused: 127\\.0\\.0\\.1:${port}$`),
  );
});

/**
 * A fake ferry server for one connection: reads the client's HELLO, then
 * answers each frame the client sends with `reply(frame)`; `null` closes.
 */
function fakeFerryServer(
  hello: Message,
  reply: (request: Message) => Message[] | null = () => null,
  digests: string[] = ["xxh3-128"],
): { port: number; [Symbol.asyncDispose](): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      const reader = new FrameReader(conn);
      const first = await reader.readMessage();
      assert.equal(first?.type, "hello");
      const offer = await reader.readMessage();
      assert.equal(offer?.type, "digests");
      await writeAll(conn, encodeMessage(hello));
      if (hello.type === "hello" && hello.maxVersion === PROTOCOL_VERSION) {
        await writeAll(
          conn,
          encodeMessage({ type: "digests", algorithms: digests }),
        );
      }
      while (true) {
        const request = await reader.readMessage();
        if (request === null) break;
        const answers = reply(request);
        if (answers === null) break;
        for (const answer of answers) {
          await writeAll(conn, encodeMessage(answer));
        }
      }
    } catch (error) {
      if (
        !(error instanceof Deno.errors.ConnectionReset ||
          error instanceof Deno.errors.BrokenPipe)
      ) throw error;
    } finally {
      conn.close();
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      await done;
    },
  };
}

const SERVER_HELLO: Message = {
  type: "hello",
  minVersion: PROTOCOL_VERSION,
  maxVersion: PROTOCOL_VERSION,
  flags: 0,
  nonce: new Uint8Array(32),
};

/** The server's HELLO and DIGESTS choosing `xxh3-128`. */
function serverOpening(): Uint8Array {
  const hello = encodeMessage(SERVER_HELLO);
  const digests = encodeMessage({ type: "digests", algorithms: ["xxh3-128"] });
  const bytes = new Uint8Array(hello.length + digests.length);
  bytes.set(hello);
  bytes.set(digests, hello.length);
  return bytes;
}

Deno.test("connect() refuses a version it does not speak", async () => {
  for (const version of [1, 3]) {
    await using server = fakeFerryServer({
      ...SERVER_HELLO,
      minVersion: version,
      maxVersion: version,
    } as Message);
    assertFerryError(
      await rejection(connect({ port: server.port })),
      "UNSUPPORTED_VERSION",
    );
  }
});

Deno.test("connect() to a version-1 server fails with UNSUPPORTED_VERSION before any transfer", async () => {
  // What a version-1 server does with a version-2 HELLO: it finds no
  // common version, answers ERROR and closes, never reading DIGESTS.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    using conn = await listener.accept();
    listener.close();
    const hello = await new FrameReader(conn).readMessage();
    assert.ok(hello?.type === "hello");
    assert.equal(hello.minVersion, 2);
    await writeAll(
      conn,
      encodeMessage({
        type: "error",
        code: "UNSUPPORTED_VERSION",
        message: "This server speaks version 1 only, the client 2 to 2",
      }),
    );
  })();
  assertFerryError(
    await rejection(connect({ port: listener.addr.port })),
    "UNSUPPORTED_VERSION",
    /version 1 only/,
  );
  await served;
});

Deno.test("connect() refuses a digest it did not offer, or more than one", async () => {
  for (
    const [options, chosen] of [
      [{ digest: "sha256" }, ["xxh3-128"]],
      [{}, ["md5"]],
      [{}, ["xxh3-128", "sha256"]],
    ] as const
  ) {
    await using server = fakeFerryServer(SERVER_HELLO, undefined, [...chosen]);
    assertFerryError(
      await rejection(connect({ port: server.port, ...options })),
      "UNSUPPORTED_VERSION",
      /digest/,
    );
  }
});

Deno.test("FerryClient get() refuses a HASH whose length is not the session algorithm's", async () => {
  await using server = fakeFerryServer(
    SERVER_HELLO,
    (request) =>
      request.type === "get"
        ? [
          { type: "data", size: 0, offset: 0, mtime: 0 },
          { type: "hash", digest: new Uint8Array(32) },
        ]
        : null,
  );
  await using client = await connect({ port: server.port });
  assert.equal(client.digest, "xxh3-128");
  assertFerryError(
    await rejection(client.get("a", new BufferWriter())),
    "PROTOCOL",
    /HASH of 32 bytes in a xxh3-128 session/,
  );
});

Deno.test("connect() maps an ERROR reply to its code", async () => {
  await using server = fakeFerryServer({
    type: "error",
    code: "BUSY",
    message: "Too many connections",
  });
  assertFerryError(
    await rejection(connect({ port: server.port })),
    "BUSY",
    /^Too many connections$/,
  );
});

Deno.test("connect() reports a reply that is not HELLO as PROTOCOL", async () => {
  await using server = fakeFerryServer({ type: "ok" });
  assertFerryError(await rejection(connect({ port: server.port })), "PROTOCOL");
});

Deno.test("FerryClient maps unknown error codes to INTERNAL with the server's message", async () => {
  await using server = fakeFerryServer(SERVER_HELLO, () => [{
    type: "error",
    code: "QUOTA",
    message: "Disk quota exceeded",
  }]);
  await using client = await connect({ port: server.port });
  assertFerryError(
    await rejection(client.stat("a")),
    "INTERNAL",
    /^QUOTA: Disk quota exceeded$/,
  );
});

Deno.test("FerryClient closes after an unexpected frame", async () => {
  await using server = fakeFerryServer(SERVER_HELLO, () => [{ type: "ok" }]);
  await using client: FerryClient = await connect({ port: server.port });
  assertFerryError(
    await rejection(client.stat("a")),
    "PROTOCOL",
    /Unexpected OK/,
  );
  assertFerryError(await rejection(client.stat("a")), "CONNECTION", /closed/);
});

Deno.test("FerryClient list() checks the END count", async () => {
  await using server = fakeFerryServer(SERVER_HELLO, () => [
    {
      type: "entries",
      entries: [{ name: "a", kind: "file", size: 1, mtime: 0 }],
    },
    { type: "end", count: 2 },
  ]);
  await using client = await connect({ port: server.port });
  assertFerryError(await rejection(client.list()), "PROTOCOL", /END counts 2/);
});

Deno.test("FerryClient made by its constructor takes DEFAULT_DIGEST and runs requests", async () => {
  const entry = { name: "a", kind: "file", size: 1, mtime: 0 } as const;
  await using server = fakeFerryServer(
    SERVER_HELLO,
    (request) => request.type === "stat" ? [{ type: "info", entry }] : null,
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const hello = encodeMessage({
    type: "hello",
    minVersion: PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    flags: 0,
    nonce: new Uint8Array(32),
  });
  await writeAll(conn, hello);
  await writeAll(
    conn,
    encodeMessage({ type: "digests", algorithms: [DEFAULT_DIGEST] }),
  );
  // The server sends nothing past its DIGESTS until a request comes.
  const handshake = new FrameReader(conn);
  assert.equal((await handshake.readMessage())?.type, "hello");
  assert.equal((await handshake.readMessage())?.type, "digests");
  await using client = new FerryClient(conn, PROTOCOL_VERSION);
  assert.equal(client.digest, DEFAULT_DIGEST);
  assert.deepEqual(await client.stat("a"), entry);
});

Deno.test("FerryClient get() reports a transfer cut short and keeps DEST.part", async () => {
  await withTempDir(async (dir) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = (async () => {
      const conn = await listener.accept();
      listener.close();
      const reader = new FrameReader(conn);
      await reader.readMessage(); // HELLO
      await reader.readMessage(); // DIGESTS
      await writeAll(conn, serverOpening());
      await reader.readMessage();
      await writeAll(
        conn,
        encodeMessage({ type: "data", size: 4096, offset: 0, mtime: 0 }),
      );
      await writeAll(conn, new Uint8Array(1000));
      conn.close();
    })();
    await using client = await connect({ port: listener.addr.port });
    const dest = `${dir}/cut.bin`;
    assertFerryError(
      await rejection(client.get("cut.bin", dest)),
      "CONNECTION",
      /^Connection closed after 1000 of 4096 bytes$/,
    );
    await served;
    assert.equal(await exists(dest), false);
    assert.equal((await Deno.stat(`${dest}.part`)).size, 1000);
  });
});

/**
 * A server that shakes hands, reads one request, sends `first` (frames and
 * raw bytes) and then stays silent until the client goes away.
 */
function stallingServer(
  first: Uint8Array[],
): { port: number; [Symbol.asyncDispose](): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      const reader = new FrameReader(conn);
      await reader.readMessage(); // HELLO
      await reader.readMessage(); // DIGESTS
      await writeAll(conn, serverOpening());
      await reader.readMessage();
      for (const bytes of first) await writeAll(conn, bytes);
      while (await reader.readMessage() !== null) {
        // Silent: read and ignore until the client closes.
      }
    } catch {
      // The client closed mid-frame.
    } finally {
      conn.close();
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      await done;
    },
  };
}

Deno.test("FerryClient stat() fails with TIMEOUT when the server goes silent", async () => {
  await using server = stallingServer([]);
  await using client = await connect({ port: server.port, idleTimeoutMs: 200 });
  assertFerryError(
    await rejection(client.stat("a")),
    "TIMEOUT",
    /^No data from the server for 0\.2 s$/,
  );
  assertFerryError(await rejection(client.stat("a")), "CONNECTION", /closed/);
});

Deno.test("FerryClient get() fails with TIMEOUT when the bytes stop and keeps DEST.part", async () => {
  await withTempDir(async (dir) => {
    await using server = stallingServer([
      encodeMessage({ type: "data", size: 4096, offset: 0, mtime: 0 }),
      new Uint8Array(1000),
    ]);
    await using client = await connect({
      port: server.port,
      idleTimeoutMs: 200,
    });
    const dest = `${dir}/stall.bin`;
    assertFerryError(await rejection(client.get("stall.bin", dest)), "TIMEOUT");
    assert.equal(await exists(dest), false);
    assert.equal((await Deno.stat(`${dest}.part`)).size, 1000);
  });
});

Deno.test("client.ts get --idle-timeout reports a silent server in one line with exit 1", async () => {
  await withTempDir(async (dir) => {
    await using server = stallingServer([]);
    const result = await runClient(
      ["--port", String(server.port), "--idle-timeout", "0.2", "get", "a.txt"],
      { cwd: dir },
    );
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "ferry: get a.txt: timed out: no data from the server for 0.2 s\n",
    );
    assert.equal(await exists(`${dir}/a.txt.part`), false);
  });
});

// ---------------------------------------------------------------------------
// The command-line tool

Deno.test("client.ts get and put --sha256 verify with SHA-256 and name it in the summary", async () => {
  await withFerryServer({ allowUpload: true }, async ({ port, dir, root }) => {
    const data = await writeRandomFile(`${root}/notes.txt`, 10_000);
    const get = await runClient(
      ["--port", String(port), "get", "--sha256", "notes.txt"],
      { cwd: dir },
    );
    assert.equal(get.code, 0, get.stderr);
    assert.equal(
      get.stdout.replace(/ in [0-9.]+ s,/, " in T s,"),
      `notes.txt: 10000 bytes in T s, sha256 ${sha256Hex(data)}\n`,
    );
    const put = await runClient(
      ["--port", String(port), "put", "--sha256", "notes.txt", "copy.txt"],
      { cwd: dir },
    );
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, new RegExp(`s, sha256 ${sha256Hex(data)}\n$`));
    assert.ok(bytesEqual(await Deno.readFile(`${root}/copy.txt`), data));
    const ls = await runClient(["--port", String(port), "ls", "--sha256"]);
    assert.equal(ls.code, 2);
    assert.match(ls.stderr, /--sha256 does not apply to ls/);
  });
});

Deno.test("client.ts get saves a file under its name and prints a summary", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    const data = await writeRandomFile(`${root}/notes.txt`, 10_000);
    const cli = await runClient(["get", "notes.txt", "--port", String(port)], {
      cwd: dir,
    });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stderr, "");
    assert.equal(
      cli.stdout.replace(/ in [0-9.]+ s,/, " in T s,"),
      `notes.txt: 10000 bytes in T s, xxh3-128 ${await digestHex(data)}\n`,
    );
    assert.ok(bytesEqual(await Deno.readFile(`${dir}/notes.txt`), data));

    const again = await runClient(
      ["--port", String(port), "get", "notes.txt"],
      {
        cwd: dir,
      },
    );
    assert.equal(again.code, 1);
    assert.equal(
      again.stderr,
      "ferry: get notes.txt: notes.txt already exists (use --force to overwrite)\n",
    );
    const forced = await runClient(
      ["--port", String(port), "get", "notes.txt", "--force", "-o", "copy"],
      { cwd: dir },
    );
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(bytesEqual(await Deno.readFile(`${dir}/copy`), data));
  });
});

Deno.test("client.ts get reports a missing file in one line with exit 1", async () => {
  await withFerryServer({}, async ({ port, dir }) => {
    const cli = await runClient(["--port", String(port), "get", "nope.txt"], {
      cwd: dir,
    });
    assert.equal(cli.code, 1);
    assert.equal(cli.stdout, "");
    assert.equal(cli.stderr, "ferry: get nope.txt: not found\n");
    assert.equal(await exists(`${dir}/nope.txt`), false);
  });
});

Deno.test("client.ts get -o - writes the file to stdout", async () => {
  await withFerryServer({}, async ({ port, root }) => {
    const data = await writeRandomFile(`${root}/b.bin`, 300_000);
    const cli = await runClient([
      "--port",
      String(port),
      "get",
      "b.bin",
      "-o",
      "-",
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.ok(bytesEqual(cli.stdoutBytes, data));
  });
});

Deno.test("client.ts ls prints aligned columns and --json prints entries", async () => {
  await withFerryServer({}, async ({ port, root }) => {
    await Deno.mkdir(`${root}/docs`);
    await Deno.writeTextFile(`${root}/a.txt`, "x".repeat(12345));
    await Deno.writeTextFile(`${root}/docs/b.txt`, "y");
    const when = new Date(2021, 4, 6, 7, 8);
    await Deno.utime(`${root}/a.txt`, when, when);

    const cli = await runClient(["ls", "--port", String(port)]);
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.trimEnd().split("\n").sort();
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^dir {7}0 {2}\d{4}-\d\d-\d\d \d\d:\d\d {2}docs$/);
    assert.equal(lines[1], "file  12345  2021-05-06 07:08  a.txt");

    const json = await runClient([
      "--port",
      String(port),
      "ls",
      "--json",
      "-r",
    ]);
    assert.equal(json.code, 0, json.stderr);
    const entries = JSON.parse(json.stdout);
    assert.deepEqual(
      entries.map((e: { name: string }) => e.name).sort(),
      ["a.txt", "docs", "docs/b.txt"],
    );
    const a = entries.find((e: { name: string }) => e.name === "a.txt");
    assert.deepEqual(a, {
      name: "a.txt",
      kind: "file",
      size: 12345,
      mtime: when.getTime(),
    });

    const missing = await runClient(["--port", String(port), "ls", "nope"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, "ferry: ls nope: not found\n");
  });
});

Deno.test("client.ts put uploads a file", async () => {
  await withFerryServer({ allowUpload: true }, async ({ port, dir, root }) => {
    const data = await writeRandomFile(`${dir}/up.bin`, 70_000);
    const cli = await runClient(["--port", String(port), "put", "up.bin"], {
      cwd: dir,
    });
    assert.equal(cli.code, 0, cli.stderr);
    assert.ok(bytesEqual(await Deno.readFile(`${root}/up.bin`), data));
    const named = await runClient(
      ["put", `${dir}/up.bin`, "other.bin", "--port", String(port)],
    );
    assert.equal(named.code, 0, named.stderr);
    assert.ok(bytesEqual(await Deno.readFile(`${root}/other.bin`), data));
    const again = await runClient(["--port", String(port), "put", "up.bin"], {
      cwd: dir,
    });
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^ferry: put up\.bin: up\.bin already exists on the server \(use --force to overwrite\)\n$/,
    );
    assert.equal(again.stderr.split("\n").length, 2);
  });
});

Deno.test("client.ts put is refused by a read-only server with exit 1", async () => {
  await withFerryServer({}, async ({ port, dir }) => {
    await Deno.writeTextFile(`${dir}/up.txt`, "x");
    const cli = await runClient(["--port", String(port), "put", "up.txt"], {
      cwd: dir,
    });
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /^ferry: put up\.txt: forbidden/);
    assert.equal(cli.stderr.split("\n").length, 2);
  });
});

Deno.test("client.ts reports usage errors with exit 2 and the usage text", async () => {
  const cases = [
    ["get", "a", "--bogus"],
    ["--port", "nope", "ls"],
    ["frobnicate"],
    ["get"],
    ["ls", "--force"],
    ["--classic", "ls"],
    ["put", "a", "b", "c"],
    ["ls", "--max-list-entries", "0"],
    ["get", "a", "--idle-timeout", "soon"],
    ["ls", "--checksum"],
    ["get", "-r", "a", "--delete"],
  ];
  for (const args of cases) {
    const cli = await runClient(args);
    assert.equal(cli.code, 2, `${args.join(" ")}: ${cli.stderr}`);
    assert.equal(cli.stdout, "");
    assert.match(cli.stderr, /^ferry: [^\n]+\n\n/);
    assert.match(cli.stderr, /USAGE:/);
  }
});

Deno.test("client.ts prints help with exit 0", async () => {
  for (
    const args of [["--help"], ["-h"], ["help"], ["get", "--help"], [
      "help",
      "ls",
    ], ["put", "-h"]]
  ) {
    const cli = await runClient(args);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /USAGE:/);
    assert.match(cli.stdout, /OPTIONS:/);
    assert.match(cli.stdout, /--port PORT .*\(default: 65432\)/);
  }
  const get = await runClient(["help", "get"]);
  assert.match(get.stdout, /-o, --output PATH .*\(default: /);
});

Deno.test("client.ts without a command and without a terminal exits 2", async () => {
  const cli = await runClient([]);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /^ferry: missing command\n/);
  assert.match(cli.stderr, /USAGE:/);
});

Deno.test("client.ts reports a refused connection in one line with exit 1", async () => {
  const port = freePort();
  const cli = await runClient(["--port", String(port), "get", "a.txt"]);
  assert.equal(cli.code, 1);
  assert.equal(
    cli.stderr,
    `ferry: get a.txt: connection refused: 127.0.0.1:${port}\n`,
  );
});

Deno.test("client.ts whose --allow-read leaves out its own folder says so in one line with exit 1", async () => {
  await withTempDir(async (dir) => {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${dir}`,
        CLIENT_SCRIPT,
        "--port",
        String(freePort()),
        "ls",
      ],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 1);
    assert.match(
      text,
      /^ferry: Cannot load \S+cli_run\.ts, which ferry imports when it is first needed: --allow-read must cover ferry's folder \(Requires read access to [^\n]+\)\n$/,
    );
  });
});

const SCRIPT = await hasTerminalScript();

Deno.test({
  name: SCRIPT
    ? "client.ts without a command asks for a file name on a terminal"
    : "client.ts prompt on a terminal (ignored: util-linux script is missing)",
  ignore: !SCRIPT,
  async fn() {
    await withFerryServer({}, async ({ port, dir, root }) => {
      const data = await writeRandomFile(`${root}/asked.bin`, 5000);
      const child = terminalCommand(CLIENT_SCRIPT, ["--port", String(port)], {
        cwd: dir,
        stdin: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("asked.bin\n"));
      await writer.close();
      const { code, stdout } = await child.output();
      const text = new TextDecoder().decode(stdout);
      assert.equal(code, 0, text);
      assert.match(text, /Enter the filename you want to download: /);
      assert.ok(bytesEqual(await Deno.readFile(`${dir}/asked.bin`), data));
    });
  },
});

Deno.test("classicGet() downloads from serve() in classic mode", async () => {
  await withFerryServer({}, async ({ port, dir, root }) => {
    for (const size of [0, 1, BULK_BUFFER_BYTES + 1]) {
      const data = await writeRandomFile(`${root}/c${size}.bin`, size);
      const result = await classicGet(`c${size}.bin`, `${dir}/c${size}.bin`, {
        port,
      });
      // Classic servers send no digest: the client reports the SHA-256 of
      // what it received, as before.
      assert.equal(result.algorithm, "sha256");
      assert.equal(result.digest, sha256Hex(data));
      assert.equal(result.sha256, sha256Hex(data));
      assert.ok(bytesEqual(await Deno.readFile(`${dir}/c${size}.bin`), data));
    }
    assertFerryError(
      await rejection(classicGet("nope.bin", `${dir}/nope.bin`, { port })),
      "NOT_FOUND",
    );
    assert.equal(await exists(`${dir}/nope.bin`), false);
  });
});
