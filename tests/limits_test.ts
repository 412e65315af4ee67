import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect } from "../client.ts";
import { FerryError } from "../errors.ts";
import { MAX_FRAME_BYTES } from "../protocol.ts";
import { serve } from "../server.ts";
import {
  RawClient,
  sha256,
  testBytes,
  treeNames,
  withServer,
} from "./_util/server.ts";
import { startServerChild } from "./_util/faults.ts";
import { SERVER_SCRIPT } from "./_util/util.ts";

async function ferryCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FerryError, String(error));
    return error.code;
  }
  return "ok";
}

/** Starts an upload on `client` and leaves it waiting for its bytes. */
async function holdInRequest(client: RawClient, path: string): Promise<void> {
  await client.send({
    type: "put",
    path,
    size: 10,
    overwrite: false,
    resume: false,
  });
  await client.expect("ready");
}

/** Sends the bytes and HASH of an upload {@linkcode holdInRequest} began. */
async function finishUpload(client: RawClient): Promise<void> {
  const bytes = testBytes(10);
  await client.sendBytes(bytes);
  await client.send({ type: "hash", digest: sha256(bytes) });
  await client.expect("ok");
}

Deno.test("serve() answers BUSY only when every slot has a request in progress, and serves again once one is idle", async () => {
  await withServer({ maxConnections: 2, allowUpload: true }, async (t) => {
    const a = await RawClient.open(t.port);
    const b = await RawClient.open(t.port);
    await holdInRequest(a, "a.bin");
    await holdInRequest(b, "b.bin");
    const raw = await RawClient.connect(t.port);
    try {
      await assert.rejects(() => raw.hello(), /BUSY/); // ERROR, not HELLO
      const busy = t.logs.find((event) => event.result === "BUSY");
      assert.ok(busy, "BUSY logged");
      assert.equal(busy.request, "HELLO");
      assert.equal(await ferryCode(connect({ port: t.port })), "BUSY");
      assert.equal(
        t.logs.filter((event) => event.result === "BUSY").length,
        2,
      );
      // a's request ends: a is idle, and a newcomer takes its slot.
      await finishUpload(a);
      {
        await using client = await connect({ port: t.port });
        await client.stat("");
      }
      assert.equal(await a.next(), null);
      assert.ok(t.logs.some((event) => event.result === "EVICTED"));
      await finishUpload(b); // the busy one was never disturbed
    } finally {
      a.close();
      b.close();
      raw.close();
    }
  });
});

Deno.test("serve() gives a newcomer the slot of the longest-idle session instead of BUSY", async () => {
  await withServer(
    { maxConnections: 20, maxConnectionsPerAddress: 20 },
    async (t) => {
      const idle: RawClient[] = [];
      try {
        for (let i = 0; i < 20; i++) idle.push(await RawClient.open(t.port));
        // One has sent a request since: it is not the first to go.
        await idle[0].send({ type: "stat", path: "" });
        await idle[0].expect("info");
        await using client = await connect({ port: t.port });
        await client.stat("");
        assert.equal(t.logs.filter((e) => e.result === "BUSY").length, 0);
        assert.equal(await idle[1].next(), null); // silent since its HELLO
        await idle[0].send({ type: "stat", path: "" });
        await idle[0].expect("info");
      } finally {
        for (const client of idle) client.close();
      }
    },
  );
});

Deno.test("serve() caps connections per address: one more takes that address's idlest slot, or BUSY if all are in a request", async () => {
  await withServer(
    { maxConnections: 100, maxConnectionsPerAddress: 2, allowUpload: true },
    async (t) => {
      const a = await RawClient.open(t.port);
      const b = await RawClient.open(t.port);
      const c = await RawClient.open(t.port); // a, idle longest, goes
      try {
        assert.equal(await a.next(), null);
        await holdInRequest(b, "b.bin");
        await holdInRequest(c, "c.bin");
        assert.equal(await ferryCode(connect({ port: t.port })), "BUSY");
        await finishUpload(b);
        await finishUpload(c);
      } finally {
        a.close();
        b.close();
        c.close();
      }
    },
  );
});

Deno.test("serve() sends BUSY as an ERROR frame before closing", async () => {
  await withServer({ maxConnections: 1, allowUpload: true }, async (t) => {
    const a = await RawClient.open(t.port);
    await holdInRequest(a, "a.bin");
    const raw = await RawClient.connect(t.port);
    try {
      await raw.send({
        type: "hello",
        minVersion: 1,
        maxVersion: 1,
        flags: 0,
        nonce: new Uint8Array(32),
      });
      await raw.expectError("BUSY");
      assert.equal(await raw.next(), null);
    } finally {
      a.close();
      raw.close();
    }
  });
});

Deno.test("serve() with default limits serves 200 concurrent clients without BUSY", async () => {
  const content = testBytes(64 * 1024, 7);
  // One address here: its limit raised to the whole test.
  await withServer({
    files: { "f.bin": content },
    maxConnectionsPerAddress: 200,
  }, async (t) => {
    const clients = await Promise.all(
      Array.from(
        { length: 200 },
        () => connect({ port: t.port, digest: "sha256" }),
      ),
    );
    try {
      const digest = createHash("sha256").update(content).digest("hex");
      await Promise.all(clients.map(async (client) => {
        const hash = createHash("sha256");
        let total = 0;
        const result = await client.get("f.bin", {
          write(p: Uint8Array): Promise<number> {
            hash.update(p);
            total += p.length;
            return Promise.resolve(p.length);
          },
        });
        assert.equal(total, content.length);
        assert.equal(hash.digest("hex"), digest);
        assert.equal(result.digest, digest);
      }));
    } finally {
      for (const client of clients) client.close();
    }
    assert.equal(t.logs.filter((e) => e.result === "BUSY").length, 0);
    assert.equal(t.logs.filter((e) => e.request === "GET").length, 200);
  });
});

const IDLE_SOCKETS = 500;

Deno.test(`serve() serves a real client byte for byte while ${IDLE_SOCKETS} idle sockets are open`, async () => {
  const content = testBytes(4 * 1024 * 1024, 11);
  await withServer({
    files: { "big.bin": content },
    maxConnectionsPerAddress: IDLE_SOCKETS + 1,
  }, async (t) => {
    const silent: Deno.Conn[] = [];
    const greeted: RawClient[] = [];
    const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      // Half send nothing, half only a HELLO; the listener accepts in
      // order, so once the last HELLO is answered every socket is held.
      for (let i = 0; i < IDLE_SOCKETS / 2; i++) {
        silent.push(
          await Deno.connect({ hostname: "127.0.0.1", port: t.port }),
        );
      }
      for (let i = 0; i < IDLE_SOCKETS / 2; i++) {
        greeted.push(await RawClient.connect(t.port));
      }
      await Promise.all(greeted.map((client) => client.hello()));
      await using client = await connect({ port: t.port });
      const result = await client.get("big.bin", `${dir}/big.bin`);
      assert.equal(result.bytes, content.length);
      assert.deepEqual(await Deno.readFile(`${dir}/big.bin`), content);
      assert.equal(t.logs.filter((e) => e.result === "BUSY").length, 0);
    } finally {
      for (const conn of silent) conn.close();
      for (const raw of greeted) raw.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("serve() closes a connection idle between requests after idleTimeoutMs", async () => {
  await withServer({ idleTimeoutMs: 200 }, async (t) => {
    const client = await RawClient.open(t.port);
    try {
      await client.send({ type: "stat", path: "" });
      await client.expect("info");
      const started = performance.now();
      assert.equal(await client.next(), null);
      assert.ok(performance.now() - started >= 150);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() drops a stalled upload after idleTimeoutMs and removes its temporary file", async () => {
  await withServer({ idleTimeoutMs: 300, allowUpload: true }, async (t) => {
    const client = await RawClient.open(t.port);
    try {
      await client.send({
        type: "put",
        path: "stalled.bin",
        size: 1024 * 1024,
        overwrite: false,
        resume: false,
      });
      await client.expect("ready");
      await client.sendBytes(testBytes(1000));
      const event = await t.waitForLog((e) => e.request === "PUT");
      assert.equal(event.result, "TIMEOUT");
      assert.equal(event.bytes, 1000);
      assert.ok(await client.closedByPeer());
      assert.deepEqual(await treeNames(t.root), []);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() drops a download whose reader stalls after idleTimeoutMs", async () => {
  const content = testBytes(32 * 1024 * 1024, 3);
  await withServer(
    { idleTimeoutMs: 300, files: { "big.bin": content } },
    async (t) => {
      const client = await RawClient.open(t.port);
      try {
        await client.send({ type: "get", path: "big.bin", offset: 0 });
        await client.expect("data");
        // Read nothing more: the server's writes stall.
        const event = await t.waitForLog((e) => e.request === "GET");
        assert.equal(event.result, "TIMEOUT");
        assert.ok(event.bytes < content.length);
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("serve() refuses a frame over maxFrameBytes with TOO_LARGE and closes", async () => {
  await withServer({ maxFrameBytes: 1024 }, async (t) => {
    const ok = await RawClient.open(t.port);
    const big = await RawClient.open(t.port);
    try {
      await ok.send({ type: "stat", path: "x".repeat(1000) });
      await ok.expectError("NOT_FOUND");
      await big.send({ type: "stat", path: "x".repeat(2000) });
      await big.expectError("TOO_LARGE");
      assert.equal(await big.next(), null);
    } finally {
      ok.close();
      big.close();
    }
  });
});

Deno.test("serve() refuses a path deeper than maxPathDepth with TOO_LARGE and stays usable", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const client = await RawClient.open(t.port);
    try {
      const deep = Array.from({ length: 65 }, () => "d").join("/");
      const limit = Array.from({ length: 64 }, () => "d").join("/");
      for (
        const request of [
          { type: "get", path: deep, offset: 0 },
          { type: "stat", path: deep },
          { type: "list", path: deep, recursive: false },
          { type: "put", path: deep, size: 1, overwrite: false, resume: false },
        ] as const
      ) {
        await client.send(request);
        await client.expectError("TOO_LARGE");
      }
      await client.send({ type: "stat", path: limit });
      await client.expectError("NOT_FOUND");
    } finally {
      client.close();
    }
  });
  await withServer({ maxPathDepth: 2, files: { "a/b": "b" } }, async (t) => {
    const client = await RawClient.open(t.port);
    try {
      await client.send({ type: "stat", path: "a/b" });
      await client.expect("info");
      await client.send({ type: "stat", path: "a/b/c" });
      await client.expectError("TOO_LARGE");
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() ends a listing over maxListEntries with ERROR TOO_LARGE instead of END", async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 25; i++) files[`many/${String(i).padStart(2, "0")}`] = "";
  for (let i = 0; i < 10; i++) files[`ten/${i}`] = "";
  await withServer({ maxListEntries: 10, files }, async (t) => {
    const raw = await RawClient.open(t.port);
    try {
      await raw.send({ type: "list", path: "many", recursive: false });
      let listed = 0;
      while (true) {
        const message = await raw.next();
        if (message?.type === "entries") {
          listed += message.entries.length;
          continue;
        }
        assert.equal(message?.type, "error", JSON.stringify(message));
        assert.equal((message as { code: string }).code, "TOO_LARGE");
        break;
      }
      assert.ok(listed <= 10);
      await raw.send({ type: "list", path: "ten", recursive: false });
      const entries = await raw.expect("entries");
      assert.equal(entries.entries.length, 10);
      assert.equal((await raw.expect("end")).count, 10);
    } finally {
      raw.close();
    }
    await using client = await connect({ port: t.port });
    assert.equal(await ferryCode(client.list("many")), "TOO_LARGE");
    assert.equal((await client.list("ten")).length, 10); // still usable
    assert.equal(
      await ferryCode(client.list("", { recursive: true })),
      "TOO_LARGE",
    );
  });
});

Deno.test("serve() refuses an upload over maxUploadBytes with TOO_LARGE before READY", async () => {
  await withServer({ allowUpload: true, maxUploadBytes: 1000 }, async (t) => {
    const client = await RawClient.open(t.port);
    try {
      const reply = await client.put("big.bin", testBytes(1001));
      assert.equal(reply?.type, "error");
      assert.equal((reply as { code: string }).code, "TOO_LARGE");
      assert.equal((await client.put("ok.bin", testBytes(1000)))?.type, "ok");
      assert.deepEqual(await treeNames(t.root), ["ok.bin"]);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() refuses limits out of range with RangeError", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    for (
      const limits of [
        { maxConnections: 0 },
        { maxConnections: 1.5 },
        { idleTimeoutMs: 0 },
        { idleTimeoutMs: Infinity },
        { drainMs: -1 },
        { drainMs: 2 ** 31 },
        { maxFrameBytes: MAX_FRAME_BYTES + 1 },
        { maxFrameBytes: 10 },
        { maxPathDepth: 0 },
        { maxListEntries: 0 },
        { maxUploadBytes: -1 },
        { maxUploadBytes: NaN },
      ]
    ) {
      await assert.rejects(
        () => serve({ root, port: 0, ...limits }),
        RangeError,
        JSON.stringify(limits),
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("server.ts --help lists the limit flags with their defaults", async () => {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER_SCRIPT, "--help"],
  }).output();
  assert.equal(code, 0);
  const text = new TextDecoder().decode(stdout);
  assert.match(text, /--max-connections N .*\(default: 512\)\n/);
  assert.match(text, /--idle-timeout SECONDS .*\(default: 60\)\n/);
  assert.match(text, /--drain-seconds SECONDS .*\(default: 5\)\n/);
  assert.match(text, /--max-upload-bytes N .*\(default: no limit\)\n/);
});

Deno.test("server.ts refuses bad limit values with exit code 2", async () => {
  for (
    const args of [
      ["--max-connections", "0"],
      ["--idle-timeout", "soon"],
      ["--drain-seconds", "1s"],
      ["--max-upload-bytes", "1e9"],
    ]
  ) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SERVER_SCRIPT, ...args],
    }).output();
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 2, args.join(" "));
    assert.equal(
      text.split("\n")[0],
      `ferry-server: bad ${args[0]}: ${args[1]}`,
    );
    assert.match(text, /USAGE:/);
  }
});

Deno.test({
  name:
    "server.ts --max-connections, --idle-timeout, --max-upload-bytes and the per-address and part limits apply",
  ignore: Deno.build.os === "windows",
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      const server = await startServerChild([
        "--root",
        root,
        "--allow-upload",
        "--max-connections",
        "1",
        "--idle-timeout",
        "0.5",
        "--max-upload-bytes",
        "10",
        "--max-connections-per-address",
        "1",
        "--max-part-bytes",
        "1000",
      ]);
      const held = await RawClient.open(server.port);
      try {
        assert.equal(
          (await held.put("big.bin", testBytes(11)) as { code: string }).code,
          "TOO_LARGE",
        );
        // In a request (an upload waiting for its bytes): no room.
        await held.send({
          type: "put",
          path: "small.bin",
          size: 5,
          overwrite: false,
          resume: false,
        });
        await held.expect("ready");
        assert.equal(await ferryCode(connect({ port: server.port })), "BUSY");
        assert.equal(await held.next(), null); // stalled for 0.5 s: closed
      } finally {
        held.close();
      }
      server.child.kill("SIGTERM");
      const { code, stderr } = await server.output();
      assert.equal(code, 0);
      assert.match(stderr, / ferry HELLO "" 0 BUSY /);
      assert.match(stderr, / ferry PUT "big\.bin" 0 TOO_LARGE /);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
