/**
 * Eager `PUT`s (see `protocol.ts`): the bytes and `HASH` follow the `PUT`
 * at once, without `READY`; the server answers each in order, refusals
 * included, and stays in step. In strict mode they are taken in runs
 * (`_server/eager_put.ts`); without `--allow-ffi` by the streaming path.
 */

import assert from "node:assert/strict";
import {
  encodeMessage,
  HELLO_EAGER_PUT,
  MAX_EAGER_PUT_BYTES,
} from "../protocol.ts";
import {
  RawClient,
  sha256,
  testBytes,
  treeNames,
  withServer,
} from "./_util/server.ts";
import { SERVER_SCRIPT } from "./_util/util.ts";
import type { Message } from "../protocol.ts";
import { MAX_RUN, RUN_BYTES } from "../_server/eager_put.ts";

const encoder = new TextEncoder();

/** The code of an `ERROR` reply, or the reply's type. */
function outcome(reply: Message | null): string {
  if (reply === null) return "closed";
  return reply.type === "error" ? reply.code : reply.type;
}

/** What {@linkcode runOfEagerPuts} expects, in order. */
const RUN_OUTCOMES = [
  "ok",
  "EXISTS",
  "INTEGRITY",
  "NOT_FOUND",
  "ok",
  "FORBIDDEN",
  "FORBIDDEN",
  "ok",
];

/**
 * Sends a run of eager PUTs (good, refused, corrupt) and a STAT in one go
 * to the server on `port` serving `root`, and checks replies and files.
 */
async function runOfEagerPuts(port: number, root: string): Promise<void> {
  const client = await RawClient.open(port);
  try {
    const mtime = Date.UTC(2001, 2, 3, 4, 5, 6, 789);
    const replies = await client.eagerPuts([
      { path: "dir/a.txt", bytes: encoder.encode("alpha"), mtime },
      { path: "old.txt", bytes: encoder.encode("no overwrite") },
      {
        path: "b.txt",
        bytes: encoder.encode("corrupt"),
        hash: sha256(encoder.encode("other")),
      },
      { path: "missing/c.txt", bytes: encoder.encode("gamma") },
      { path: "old.txt", bytes: encoder.encode("replaced"), overwrite: true },
      { path: "dir/.ferry-ab.part", bytes: encoder.encode("sneaky") },
      { path: "dir", bytes: encoder.encode("folder"), overwrite: true },
      { path: "dir/empty.txt", bytes: new Uint8Array(0) },
    ]);
    assert.deepEqual(replies.map(outcome), RUN_OUTCOMES);
    // Still in step: the next request is answered as usual.
    await client.send({ type: "stat", path: "dir/a.txt" });
    const info = await client.expect("info");
    assert.equal(info.entry.size, 5);
    assert.equal(info.entry.mtime, mtime);
  } finally {
    client.close();
  }
  assert.equal(await Deno.readTextFile(`${root}/dir/a.txt`), "alpha");
  assert.equal(await Deno.readTextFile(`${root}/old.txt`), "replaced");
  assert.equal(await Deno.readTextFile(`${root}/dir/empty.txt`), "");
  assert.equal(
    (await Deno.stat(`${root}/dir/a.txt`)).mtime?.getTime(),
    Date.UTC(2001, 2, 3, 4, 5, 6, 789),
  );
  // Nothing else, and no temporary left behind.
  assert.deepEqual(await treeNames(root), [
    "dir",
    "dir/a.txt",
    "dir/empty.txt",
    "old.txt",
  ]);
}

Deno.test("serve() announces eager PUTs in its HELLO, answers a run of them in order (refusals too) and stays in step", async () => {
  await withServer(
    { allowUpload: true, files: { "old.txt": "old", "dir/keep": "k" } },
    async (t) => {
      await Deno.remove(`${t.root}/dir/keep`);
      const client = await RawClient.connect(t.port);
      try {
        const hello = await client.hello();
        assert.equal(hello.flags & HELLO_EAGER_PUT, HELLO_EAGER_PUT);
      } finally {
        client.close();
      }
      await runOfEagerPuts(t.port, t.root);
      const puts = t.logs.filter((event) => event.request === "PUT");
      assert.deepEqual(puts.map((event) => event.result), RUN_OUTCOMES);
      assert.equal(puts[0].bytes, 5);
    },
  );
});

Deno.test("serve() answers many runs of eager PUTs sent in one go, in order, each file whole (full runs, and files that fill a run's bytes)", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const uploads: { path: string; bytes: Uint8Array }[] = [];
    for (let i = 0; i < 3 * MAX_RUN + 5; i++) {
      uploads.push({ path: `many/f${i}`, bytes: testBytes(i * 37, i) });
    }
    for (let i = 0; i < 3; i++) {
      uploads.push({
        path: `many/big${i}`,
        bytes: testBytes(RUN_BYTES / 2 + 1, 100 + i),
      });
    }
    await Deno.mkdir(`${t.root}/many`);
    const client = await RawClient.open(t.port);
    try {
      const replies = await client.eagerPuts(uploads);
      assert.deepEqual(replies.map(outcome), uploads.map(() => "ok"));
    } finally {
      client.close();
    }
    for (const { path, bytes } of uploads) {
      assert.deepEqual(await Deno.readFile(`${t.root}/${path}`), bytes, path);
    }
    assert.equal(
      (await treeNames(`${t.root}/many`)).length,
      uploads.length,
      "no temporary left behind",
    );
  });
});

Deno.test("serve() without --allow-ffi takes eager PUTs by the streaming path, with the same answers", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.writeTextFile(`${root}/old.txt`, "old");
    await Deno.mkdir(`${root}/dir`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${root}`,
        `--allow-write=${root}`,
        SERVER_SCRIPT,
        "--root",
        root,
        "--port",
        "0",
        "--allow-upload",
        "--quiet",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = child.stdout.getReader();
      let head = "";
      while (!head.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        head += new TextDecoder().decode(value);
      }
      reader.releaseLock();
      const port = Number(head.match(/127\.0\.0\.1:(\d+)/)?.[1]);
      assert.ok(port > 0, head);
      await runOfEagerPuts(port, await Deno.realPath(root));
    } finally {
      child.kill("SIGTERM");
      await child.stdout.cancel();
      await child.status;
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve() reads past the bytes of eager PUTs it refuses (uploads off, over the size limit) and stays in step", async () => {
  for (
    const [options, code] of [
      [{ allowUpload: false }, "FORBIDDEN"],
      [{ allowUpload: true, maxUploadBytes: 4 }, "TOO_LARGE"],
    ] as const
  ) {
    await withServer({ ...options, files: { "hi.txt": "hi\n" } }, async (t) => {
      const client = await RawClient.open(t.port);
      try {
        const replies = await client.eagerPuts([
          { path: "a.bin", bytes: new Uint8Array(5000) },
          { path: "b.bin", bytes: new Uint8Array(300) },
        ]);
        assert.deepEqual(replies.map(outcome), [code, code]);
        const got = await client.get("hi.txt");
        assert.equal(new TextDecoder().decode(got.bytes), "hi\n");
      } finally {
        client.close();
      }
      assert.deepEqual(await treeNames(t.root), ["hi.txt"]);
    });
  }
});

Deno.test("serve() takes an eager PUT's HASH that arrives in pieces, and refuses another frame in its place with BAD_REQUEST", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const bytes = encoder.encode("split");
    const put = (path: string) => ({
      type: "put" as const,
      path,
      size: bytes.length,
      overwrite: false,
      resume: false,
      eager: true,
    });
    const client = await RawClient.open(t.port);
    try {
      const hash = encodeMessage({ type: "hash", digest: sha256(bytes) });
      await client.send(put("a.txt"));
      await client.sendBytes(bytes);
      await client.sendBytes(hash.subarray(0, 3));
      await client.sendBytes(hash.subarray(3, 9));
      // Sent in three writes: the server may see only part of the HASH.
      await client.sendBytes(hash.subarray(9));
      assert.equal(outcome(await client.next()), "ok");
      await client.send(put("b.txt"));
      await client.sendBytes(bytes);
      await client.send({ type: "stat", path: "a.txt" });
      await client.expectError("BAD_REQUEST");
      assert.equal(await client.next(), null);
    } finally {
      client.close();
    }
    assert.equal(await Deno.readTextFile(`${t.root}/a.txt`), "split");
    assert.deepEqual(await treeNames(t.root), ["a.txt"]);
  });
});

Deno.test("serve() refuses an eager PUT over MAX_EAGER_PUT_BYTES with BAD_REQUEST and closes", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const client = await RawClient.open(t.port);
    try {
      // The frame as a peer that ignores the limit would send it.
      const path = encoder.encode("big.bin");
      const frame = new Uint8Array(5 + 8 + 1 + 8 + 2 + path.length);
      const view = new DataView(frame.buffer);
      frame[0] = 0x13;
      view.setUint32(1, frame.length - 5);
      view.setBigUint64(5, BigInt(MAX_EAGER_PUT_BYTES + 1));
      frame[13] = 0x10;
      view.setUint16(22, path.length);
      frame.set(path, 24);
      await client.sendBytes(frame);
      await client.expectError("BAD_REQUEST");
      assert.equal(await client.next(), null);
    } finally {
      client.close();
    }
    assert.deepEqual(await treeNames(t.root), []);
  });
});

Deno.test("serve() keeps the eager PUTs of a run that arrived whole and nothing of one cut short", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const client = await RawClient.open(t.port);
    const whole = encoder.encode("whole");
    try {
      const put = (path: string, size: number) => ({
        type: "put" as const,
        path,
        size,
        overwrite: false,
        resume: false,
        eager: true,
      });
      await client.send(put("a.txt", whole.length));
      await client.sendBytes(whole);
      await client.send({ type: "hash", digest: sha256(whole) });
      await client.send(put("b.txt", 100));
      await client.sendBytes(new Uint8Array(40)); // then the client is gone
      await client.conn.closeWrite();
      assert.equal(outcome(await client.next()), "ok");
      assert.equal(await client.next(), null);
    } finally {
      client.close();
    }
    await t.waitForLog((event) => event.path === "b.txt");
    assert.equal(await Deno.readTextFile(`${t.root}/a.txt`), "whole");
    assert.deepEqual(await treeNames(t.root), ["a.txt"]);
  });
});

Deno.test({
  name:
    "serve() closes the folders it walked for an eager PUT whose connection is cut mid-way" +
    (Deno.build.os === "linux" ? "" : " (ignored: counts /proc/PID/fd)"),
  ignore: Deno.build.os !== "linux",
  async fn() {
    await withServer(
      { allowUpload: true, files: { "d/e/x": "x" } },
      async (t) => {
        // Descriptors of this process open on the root or the folder
        // (Deno reads /proc/self only under -A: ls reads it here).
        const open = async () => {
          const { stdout } = await new Deno.Command("ls", {
            args: ["-l", `/proc/${Deno.pid}/fd`],
          }).output();
          return new TextDecoder().decode(stdout).split("\n").filter((line) =>
            line.endsWith(` -> ${t.root}`) ||
            line.endsWith(` -> ${t.root}/d`) ||
            line.endsWith(` -> ${t.root}/d/e`)
          ).length;
        };
        const cut = async () => {
          const client = await RawClient.open(t.port);
          await client.send({
            type: "put",
            path: "d/e/cut.bin",
            size: 100,
            overwrite: false,
            resume: false,
            eager: true,
          });
          await client.sendBytes(new Uint8Array(10));
          client.close();
          await t.waitForLog((event) =>
            event.path === "d/e/cut.bin" && event.result !== "ok"
          );
        };
        for (let i = 0; i < 5; i++) await cut();
        assert.equal(await open(), 0);
        assert.deepEqual(await treeNames(t.root), ["d", "d/e", "d/e/x"]);
      },
    );
  },
});
