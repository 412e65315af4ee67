import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  RawClient,
  sha256,
  testBytes,
  treeNames,
  withServer,
} from "./_util/server.ts";
import { startServerChild, within } from "./_util/faults.ts";
import { Server, STUCK_MARGIN_MS } from "../_server/accept.ts";
import { makeServerContext } from "../_server/serve.ts";
import { encodeMessage, type Message } from "../protocol.ts";

const BIG = 32 * 1024 * 1024;
const PIECE = 64 * 1024;

/** Reads the rest of a download in small pieces; returns its SHA-256. */
async function readSlowly(
  client: RawClient,
  count: number,
  hash: ReturnType<typeof createHash>,
): Promise<void> {
  const piece = new Uint8Array(PIECE);
  let done = 0;
  while (done < count) {
    const n = await client.reader.read(
      piece.subarray(0, Math.min(PIECE, count - done)),
    );
    assert.notEqual(n, null, `cut after ${done} of ${count} bytes`);
    hash.update(piece.subarray(0, n!));
    done += n!;
  }
}

Deno.test("serve() lets a download in progress finish byte for byte after a stop, and closes idle connections at once", async () => {
  const content = testBytes(BIG, 5);
  await withServer({ files: { "big.bin": content } }, async (t) => {
    const reader = await RawClient.open(t.port);
    const idle = await RawClient.open(t.port);
    try {
      // A GET, and a STAT pipelined behind it that must never be answered.
      await reader.send({ type: "get", path: "big.bin", offset: 0 });
      await reader.send({ type: "stat", path: "" });
      const data = await reader.expect("data");
      assert.equal(data.size, BIG);
      const hash = createHash("sha256");
      await readSlowly(reader, PIECE, hash);

      let stopped = false;
      const finished = t.server.shutdown().then(() => stopped = true);
      // The idle connection closes at once, while the GET still runs.
      assert.equal(await idle.next(), null);
      assert.equal(stopped, false);
      await assert.rejects(() =>
        Deno.connect({ hostname: "127.0.0.1", port: t.port })
      );

      await readSlowly(reader, BIG - PIECE, hash);
      const trailer = await reader.expect("hash");
      assert.deepEqual(trailer.digest, new Uint8Array(hash.digest()));
      assert.deepEqual(trailer.digest, sha256(content));
      assert.equal(await reader.next(), null); // no answer to the STAT
      reader.close(); // the server waits for that (or the drain deadline)
      const started = performance.now();
      await finished;
      assert.ok(performance.now() - started < 2_000);
      const gets = t.logs.filter((event) => event.request === "GET");
      assert.deepEqual(gets.map((event) => event.result), ["ok"]);
      assert.equal(
        t.logs.filter((event) => event.request === "STAT").length,
        0,
      );
    } finally {
      reader.close();
      idle.close();
    }
  });
});

Deno.test("serve() stops at once when no request is in progress", async () => {
  await withServer({ drainMs: 5_000 }, async (t) => {
    const clients = await Promise.all(
      Array.from({ length: 10 }, () => RawClient.open(t.port)),
    );
    try {
      const started = performance.now();
      await t.server.shutdown();
      assert.ok(performance.now() - started < 1_000);
      for (const client of clients) assert.equal(await client.next(), null);
    } finally {
      for (const client of clients) client.close();
    }
  });
});

Deno.test("serve() cuts transfers still running at the drain deadline and leaves no temporary file", async () => {
  const content = testBytes(BIG, 9);
  await withServer(
    { allowUpload: true, drainMs: 300, files: { "big.bin": content } },
    async (t) => {
      const uploader = await RawClient.open(t.port);
      const downloader = await RawClient.open(t.port);
      try {
        await uploader.send({
          type: "put",
          path: "up.bin",
          size: BIG,
          overwrite: false,
          resume: false,
        });
        await uploader.expect("ready");
        await uploader.sendBytes(testBytes(1024 * 1024, 2));
        await downloader.send({ type: "get", path: "big.bin", offset: 0 });
        await downloader.expect("data");
        const started = performance.now();
        await t.server.shutdown(); // neither transfer moves on: both are cut
        const took = performance.now() - started;
        assert.ok(took >= 250 && took < 3_000, `${took} ms`);
        assert.deepEqual(await treeNames(t.root), ["big.bin"]);
        const results = new Map(
          t.logs.map((event) => [event.request, event.result]),
        );
        assert.notEqual(results.get("PUT"), "ok");
        assert.notEqual(results.get("GET"), "ok");
        assert.ok(await uploader.closedByPeer());
      } finally {
        uploader.close();
        downloader.close();
      }
    },
  );
});

Deno.test({
  name: "server.ts finishes a download in progress on SIGTERM, then exits 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      const content = testBytes(BIG, 13);
      await Deno.writeFile(`${root}/big.bin`, content);
      const server = await startServerChild(["--root", root]);
      const reader = await RawClient.open(server.port);
      try {
        await reader.send({ type: "get", path: "big.bin", offset: 0 });
        await reader.expect("data");
        const hash = createHash("sha256");
        await readSlowly(reader, PIECE, hash);
        server.child.kill("SIGTERM");
        await readSlowly(reader, BIG - PIECE, hash);
        const trailer = await reader.expect("hash");
        assert.deepEqual(trailer.digest, sha256(content));
        assert.deepEqual(trailer.digest, new Uint8Array(hash.digest()));
        assert.equal(await reader.next(), null);
      } finally {
        reader.close();
      }
      const { code, stdout, stderr } = await server.output();
      assert.equal(code, 0);
      assert.equal(stdout, "");
      assert.match(stderr, / ferry GET "big\.bin" 33554432 ok /);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "server.ts --drain-seconds cuts a stalled download on SIGINT and exits 0",
  ignore: Deno.build.os === "windows",
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      await Deno.writeFile(`${root}/big.bin`, testBytes(BIG, 17));
      const server = await startServerChild([
        "--root",
        root,
        "--drain-seconds",
        "0.3",
      ]);
      const reader = await RawClient.open(server.port);
      try {
        await reader.send({ type: "get", path: "big.bin", offset: 0 });
        await reader.expect("data");
        const started = performance.now();
        server.child.kill("SIGINT");
        const { code, stderr } = await server.output();
        const took = performance.now() - started;
        assert.equal(code, 0);
        assert.ok(took >= 250 && took < 5_000, `${took} ms`);
        assert.match(stderr, / ferry GET "big\.bin" \d+ CONNECTION /);
      } finally {
        reader.close();
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("serve() stops at the drain deadline while a resumed GET still hashes the start of a large file", async () => {
  const size = 1024 * 1024 * 1024; // sparse: no disk space, seconds to hash
  await withServer(
    { drainMs: 0, hashCacheEntries: 0, files: { "a.txt": "a" } },
    async (t) => {
      const file = await Deno.open(`${t.root}/huge.bin`, {
        write: true,
        createNew: true,
      });
      try {
        await file.truncate(size);
      } finally {
        file.close();
      }
      const client = await RawClient.open(t.port);
      try {
        // Pipelined: once INFO arrives, the server has taken up the GET,
        // which hashes bytes 0..size before it sends anything.
        await client.sendBytes(concatFrames([
          { type: "stat", path: "a.txt" },
          { type: "get", path: "huge.bin", offset: size },
        ]));
        await client.expect("info");
        const started = performance.now();
        await t.server.shutdown();
        const took = performance.now() - started;
        assert.ok(took < 1500, `shutdown took ${took.toFixed(0)} ms`);
        assert.equal(await client.next(), null);
      } finally {
        client.close();
      }
    },
  );
});

function concatFrames(messages: Message[]): Uint8Array {
  const frames = messages.map((message) => encodeMessage(message));
  const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    bytes.set(frame, at);
    at += frame.length;
  }
  return bytes;
}

Deno.test("Server stops within the drain deadline and a margin while a handler is stuck for ever", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  const controller = new AbortController();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const drainMs = 200;
  const context = await makeServerContext({ root, drainMs });
  // Stands for a handler blocked in the kernel: closing its connection
  // does not end it.
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => entered = resolve);
  const server = new Server(listener, context, {
    signal: controller.signal,
    handle: () => {
      entered();
      return new Promise<void>(() => {});
    },
  });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  try {
    await inside;
    const started = performance.now();
    controller.abort();
    await within(server.finished, drainMs + STUCK_MARGIN_MS + 2000, "finished");
    const took = performance.now() - started;
    assert.ok(took >= drainMs, `stopped after ${took} ms, before the drain`);
  } finally {
    conn.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve() stops hashing the start of a resumed GET once its client leaves", async () => {
  const size = 4 * 1024 * 1024 * 1024; // sparse: seconds to hash
  await withServer(
    { hashCacheEntries: 0, files: { "a.txt": "a" } },
    async (t) => {
      const file = await Deno.open(`${t.root}/huge.bin`, {
        write: true,
        createNew: true,
      });
      try {
        await file.truncate(size);
      } finally {
        file.close();
      }
      const client = await RawClient.open(t.port);
      try {
        // Once INFO arrives, the server hashes bytes 0..size of huge.bin.
        await client.sendBytes(concatFrames([
          { type: "stat", path: "a.txt" },
          { type: "get", path: "huge.bin", offset: size },
        ]));
        await client.expect("info");
      } finally {
        client.close();
      }
      const event = await t.waitForLog((e) => e.request === "GET");
      assert.notEqual(event.result, "ok");
      assert.ok(
        event.durationMs < 1500,
        `hashed on for ${event.durationMs.toFixed(0)} ms after the client left`,
      );
    },
  );
});
