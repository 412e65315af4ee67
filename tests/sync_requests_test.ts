/**
 * End-to-end tests of the requests a sync needs on the server: `DELETE`
 * (jailed, off by default), `SUM` (whole file or prefix) and the appending
 * `PUT`, over real sockets against real folders.
 */

import { digestOf } from "../_common/digest.ts";
import assert from "node:assert/strict";
import { writeAll } from "../protocol.ts";
import { serve } from "../server.ts";
import {
  RawClient,
  sha256,
  testBytes,
  treeNames,
  withServer,
} from "./_util/server.ts";
import { runScript, SERVER_SCRIPT } from "./_util/util.ts";

Deno.test("DELETE is refused with FORBIDDEN when deletes are off, and nothing is removed", async () => {
  await withServer(
    { allowUpload: true, files: { "a.txt": "a", "d/b.txt": "b" } },
    async ({ port, root }) => {
      const client = await RawClient.open(port);
      try {
        for (const path of ["a.txt", "d", "d/b.txt"]) {
          await client.send({ type: "delete", path, recursive: true });
          await client.expectError("FORBIDDEN");
        }
        assert.deepEqual(await treeNames(root), ["a.txt", "d", "d/b.txt"]);
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("serve() refuses allowDelete without allowUpload", async () => {
  await assert.rejects(
    () => serve({ port: 0, allowDelete: true }),
    TypeError,
  );
});

Deno.test("server.ts refuses --allow-delete without --allow-upload as a usage error", async () => {
  const result = await runScript(SERVER_SCRIPT, [
    "--allow-delete",
    "--port",
    "0",
  ]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--allow-delete needs --allow-upload/);
  assert.doesNotMatch(result.stderr, /\n\s+at /); // no stack trace
});

Deno.test("DELETE removes a file, an empty folder, and a full folder only when recursive", async () => {
  await withServer(
    {
      allowUpload: true,
      allowDelete: true,
      files: { "a.txt": "a", "full/x/y.txt": "y", "keep.txt": "k" },
    },
    async ({ port, root }) => {
      await Deno.mkdir(`${root}/empty`);
      const client = await RawClient.open(port);
      try {
        await client.send({ type: "delete", path: "a.txt", recursive: false });
        await client.expect("ok");
        await client.send({ type: "delete", path: "empty", recursive: false });
        await client.expect("ok");
        await client.send({ type: "delete", path: "full", recursive: false });
        await client.expectError("EXISTS");
        assert.deepEqual(await treeNames(root), [
          "full",
          "full/x",
          "full/x/y.txt",
          "keep.txt",
        ]);
        await client.send({ type: "delete", path: "full", recursive: true });
        await client.expect("ok");
        await client.send({ type: "delete", path: "gone", recursive: false });
        await client.expectError("NOT_FOUND");
        assert.deepEqual(await treeNames(root), ["keep.txt"]);
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("DELETE refuses the root, escapes and upload temporaries, and never goes through a symbolic link", async () => {
  await withServer(
    {
      allowUpload: true,
      allowDelete: true,
      files: { "real/inside.txt": "i", ".ferry-00ff.part": "p" },
    },
    async ({ port, root, base, canary }) => {
      await Deno.mkdir(`${base}/outside`);
      await Deno.writeTextFile(`${base}/outside/o.txt`, "o");
      await Deno.symlink(`${base}/outside`, `${root}/out`);
      await Deno.symlink(`${root}/real`, `${root}/in`);
      await Deno.mkdir(`${root}/holder`);
      await Deno.symlink(`${base}/outside`, `${root}/holder/link`);
      const client = await RawClient.open(port);
      try {
        for (
          const path of [
            "",
            "..",
            "../canary.txt",
            "real/../../canary.txt",
            "/etc",
            "out/o.txt", // through a link out of the root
            "in/inside.txt", // through a link inside the root
            ".ferry-00ff.part",
          ]
        ) {
          await client.send({ type: "delete", path, recursive: true });
          await client.expectError("FORBIDDEN");
        }
        // A link itself is removed, never what it points to.
        await client.send({ type: "delete", path: "out", recursive: true });
        await client.expect("ok");
        // A recursive delete removes links inside, not their targets.
        await client.send({ type: "delete", path: "holder", recursive: true });
        await client.expect("ok");
        assert.deepEqual(await treeNames(`${base}/outside`), ["o.txt"]);
        assert.equal(await Deno.readTextFile(`${base}/canary.txt`), canary);
        assert.deepEqual(await treeNames(root), [
          ".ferry-00ff.part",
          "in",
          "real",
          "real/inside.txt",
        ]);
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("SUM answers the digest of a whole file or of a prefix in the session algorithm, and refuses folders and lengths past the end", async () => {
  const content = testBytes(3 * 1024 * 1024 + 17, 5);
  await withServer({ files: { "big.bin": content } }, async ({ port }) => {
    const client = await RawClient.open(port);
    try {
      await client.send({ type: "sum", path: "big.bin" });
      assert.deepEqual((await client.expect("hash")).digest, sha256(content));
      for (const length of [0, 1, 1024 * 1024 + 1, content.length]) {
        await client.send({ type: "sum", path: "big.bin", length });
        assert.deepEqual(
          (await client.expect("hash")).digest,
          sha256(content.subarray(0, length)),
          `prefix ${length}`,
        );
      }
      await client.send({
        type: "sum",
        path: "big.bin",
        length: content.length + 1,
      });
      await client.expectError("BAD_REQUEST");
      await client.send({ type: "sum", path: "" });
      await client.expectError("FORBIDDEN");
      await client.send({ type: "sum", path: "../canary.txt" });
      await client.expectError("FORBIDDEN");
      await client.send({ type: "sum", path: "missing" });
      await client.expectError("NOT_FOUND");
    } finally {
      client.close();
    }
    // An XXH3-128 session gets XXH3-128 sums, of the whole file and of a prefix.
    const xxh3 = await RawClient.connect(port);
    try {
      await xxh3.hello(2, 2, ["xxh3-128"]);
      await xxh3.send({ type: "sum", path: "big.bin" });
      assert.deepEqual(
        (await xxh3.expect("hash")).digest,
        await digestOf("xxh3-128", content),
      );
      await xxh3.send({ type: "sum", path: "big.bin", length: 1000 });
      assert.deepEqual(
        (await xxh3.expect("hash")).digest,
        await digestOf("xxh3-128", content.subarray(0, 1000)),
      );
    } finally {
      xxh3.close();
    }
  });
});

Deno.test("PUT with the append flag receives only the bytes past the file already there", async () => {
  const old = testBytes(200_000, 7);
  const grown = new Uint8Array(old.length + 50_000);
  grown.set(old);
  grown.set(testBytes(50_000, 8), old.length);
  await withServer(
    { allowUpload: true, files: { "log.bin": old } },
    async ({ port, root, logs }) => {
      const client = await RawClient.open(port);
      try {
        const mtime = Date.UTC(2021, 5, 6);
        await client.send({
          type: "put",
          path: "log.bin",
          size: grown.length,
          overwrite: true,
          resume: false,
          append: true,
          mtime,
        });
        assert.equal((await client.expect("ready")).offset, old.length);
        await writeAll(client.conn, grown.subarray(old.length));
        await client.send({ type: "hash", digest: sha256(grown) });
        await client.expect("ok");
        assert.deepEqual(await Deno.readFile(`${root}/log.bin`), grown);
        assert.equal(
          (await Deno.stat(`${root}/log.bin`)).mtime?.getTime(),
          mtime,
        );
        const put = logs.find((event) => event.request === "PUT")!;
        assert.equal(put.bytes, 50_000);
        // A file that is not a prefix: the whole-file hash cannot match,
        // and the file stays as it was.
        const other = testBytes(grown.length + 10, 9);
        await client.send({
          type: "put",
          path: "log.bin",
          size: other.length,
          overwrite: true,
          resume: false,
          append: true,
        });
        const offset = (await client.expect("ready")).offset;
        assert.equal(offset, grown.length);
        await writeAll(client.conn, other.subarray(offset));
        await client.send({ type: "hash", digest: sha256(other) });
        await client.expectError("INTEGRITY");
        assert.deepEqual(await Deno.readFile(`${root}/log.bin`), grown);
        assert.deepEqual(await treeNames(root), ["log.bin"]);
      } finally {
        client.close();
      }
    },
  );
});
