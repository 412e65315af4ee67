import assert from "node:assert/strict";
import {
  encodeMessage,
  type Entry,
  FRAME_HEADER_BYTES,
  HELLO_EAGER_PUT,
  MAX_FRAME_BYTES,
} from "./protocol.ts";
import { FerryError } from "./errors.ts";
import { toHex } from "./_common/bytes.ts";
import { serve } from "./server.ts";
import {
  RawClient,
  sha256,
  testBytes,
  treeNames,
  withServer,
} from "./tests/_util/server.ts";
import { runScript, SERVER_SCRIPT, spawnScript } from "./tests/_util/util.ts";

/** Collects a LIST reply: entries of all batches, batch count, END count. */
async function list(
  client: RawClient,
  path: string,
  recursive = false,
): Promise<{ entries: Entry[]; batches: number; count: number }> {
  await client.send({ type: "list", path, recursive });
  const entries: Entry[] = [];
  let batches = 0;
  while (true) {
    const message = await client.next();
    if (message?.type === "entries") {
      entries.push(...message.entries);
      batches++;
      continue;
    }
    assert.equal(message?.type, "end", JSON.stringify(message));
    return { entries, batches, count: (message as { count: number }).count };
  }
}

Deno.test("serve() answers HELLO with version 2, only the eager-PUT flag and a 32-byte nonce", async () => {
  await withServer({}, async ({ port }) => {
    const client = await RawClient.connect(port);
    try {
      const hello = await client.hello(1, 3);
      assert.equal(hello.minVersion, 2);
      assert.equal(hello.maxVersion, 2);
      assert.equal(hello.flags, HELLO_EAGER_PUT);
      assert.equal(hello.nonce.length, 32);
      assert.ok(hello.nonce.some((byte) => byte !== 0));
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() picks the first digest algorithm of the client's list that it supports", async () => {
  await withServer({ files: { "hi.txt": "hi\n" } }, async ({ port }) => {
    for (
      const [offer, chosen, hex] of [
        [
          ["xxh3-128", "sha256"],
          "xxh3-128",
          "f4d0497cf9394caab34d1a3ab2bece70",
        ],
        [
          ["blake9", "sha256", "xxh3-128"],
          "sha256",
          "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4",
        ],
      ] as const
    ) {
      const client = await RawClient.connect(port);
      try {
        await client.hello(2, 2, [...offer].filter((n) => n === chosen));
        const got = await client.get("hi.txt");
        assert.ok(got.trailer?.type === "hash");
        assert.equal(toHex(got.trailer.digest), hex);
      } finally {
        client.close();
      }
      // The same through the whole offer, unknown names included.
      const raw = await RawClient.connect(port);
      try {
        await raw.sendHello(2, 2, [...offer]);
        await raw.expect("hello");
        assert.deepEqual((await raw.expect("digests")).algorithms, [chosen]);
      } finally {
        raw.close();
      }
    }
  });
});

Deno.test("serve() refuses a DIGESTS without a supported algorithm with UNSUPPORTED_VERSION", async () => {
  await withServer({}, async ({ port, waitForLog }) => {
    const client = await RawClient.connect(port);
    try {
      await client.sendHello(2, 2, ["md5", "crc32"]);
      const error = await client.expect("error");
      assert.equal(error.code, "UNSUPPORTED_VERSION");
      assert.match(
        error.message,
        /^No digest algorithm in common: the client accepts md5, crc32, this server xxh3-128, sha256$/,
      );
      assert.equal(await client.next(), null);
      const event = await waitForLog((e) => e.request === "HELLO");
      assert.equal(event.result, "UNSUPPORTED_VERSION");
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() answers a HELLO not followed by DIGESTS with BAD_REQUEST", async () => {
  await withServer({ files: { "a.txt": "a" } }, async ({ port }) => {
    const client = await RawClient.connect(port);
    try {
      await client.sendHello(2, 2, null);
      await client.send({ type: "get", path: "a.txt", offset: 0 });
      await client.expectError("BAD_REQUEST");
      assert.equal(await client.next(), null);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() answers a version-1 client with UNSUPPORTED_VERSION, never a digest", async () => {
  await withServer({}, async ({ port }) => {
    const client = await RawClient.connect(port);
    try {
      // A version-1 client sends HELLO 1..1 and then, unprompted, nothing.
      await client.sendHello(1, 1, null);
      const error = await client.expect("error");
      assert.equal(error.code, "UNSUPPORTED_VERSION");
      assert.match(error.message, /version 2 only, the client 1 to 1/);
      assert.equal(await client.next(), null);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() refuses a client without a common version with UNSUPPORTED_VERSION", async () => {
  await withServer({}, async ({ port, waitForLog }) => {
    const client = await RawClient.connect(port);
    try {
      await client.send({
        type: "hello",
        minVersion: 7,
        maxVersion: 7,
        flags: 0,
        nonce: new Uint8Array(32),
      });
      await client.expectError("UNSUPPORTED_VERSION");
      assert.equal(await client.next(), null);
      const event = await waitForLog((e) => e.request === "HELLO");
      assert.equal(event.result, "UNSUPPORTED_VERSION");
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() answers a garbage frame with BAD_REQUEST, closes, and serves the next client", async () => {
  await withServer({ files: { "a.txt": "hello" } }, async ({ port }) => {
    const bad = await RawClient.open(port);
    try {
      await bad.sendBytes(new Uint8Array([0x7f, 0, 0, 0, 1, 0x42]));
      await bad.expectError("BAD_REQUEST");
      assert.equal(await bad.next(), null);
    } finally {
      bad.close();
    }
    // A HELLO with a bad magic is refused the same way.
    const badHello = await RawClient.connect(port);
    try {
      await badHello.sendBytes(
        new Uint8Array([0, 0, 0, 0, 12, 1, 2, 3, 4, 5, 0, 1, 0, 1, 0, 0, 0]),
      );
      await badHello.expectError("BAD_REQUEST");
      assert.equal(await badHello.next(), null);
    } finally {
      badHello.close();
    }
    const good = await RawClient.open(port);
    try {
      await good.send({ type: "stat", path: "a.txt" });
      const info = await good.expect("info");
      assert.equal(info.entry.size, 5);
    } finally {
      good.close();
    }
  });
});

Deno.test("serve() answers an unexpected message type with BAD_REQUEST and closes", async () => {
  await withServer({}, async ({ port }) => {
    const client = await RawClient.open(port);
    try {
      await client.send({ type: "ok" });
      await client.expectError("BAD_REQUEST");
      assert.equal(await client.next(), null);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() answers an oversized declared length with TOO_LARGE and closes", async () => {
  await withServer({}, async ({ port, waitForLog }) => {
    const client = await RawClient.open(port);
    try {
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      header[0] = 0x10; // LIST
      new DataView(header.buffer).setUint32(1, MAX_FRAME_BYTES + 1);
      await client.sendBytes(header);
      await client.expectError("TOO_LARGE");
      assert.equal(await client.next(), null);
      const event = await waitForLog((e) => e.request === "INVALID");
      assert.equal(event.result, "TOO_LARGE");
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() lists a folder, folders first, and skips what it cannot serve", async () => {
  await withServer({
    files: {
      "b.txt": "bb",
      "a.txt": "a",
      "zdir/inner.txt": "inner",
      "adir/x.txt": "x",
      ".ferry-0123abcd.part": "half an upload",
    },
  }, async ({ port, root }) => {
    await Deno.symlink(`${root}/a.txt`, `${root}/link.txt`);
    const client = await RawClient.open(port);
    try {
      const { entries, count } = await list(client, "");
      assert.deepEqual(
        entries.map((e) => `${e.kind}:${e.name}:${e.size}`),
        [
          "dir:adir:0",
          "dir:zdir:0",
          "file:a.txt:1",
          "file:b.txt:2",
          "file:link.txt:1",
        ],
      );
      assert.equal(count, 5);
      const mtime = (await Deno.stat(`${root}/b.txt`)).mtime!.getTime();
      assert.equal(entries.find((e) => e.name === "b.txt")?.mtime, mtime);
      const sub = await list(client, "zdir");
      assert.deepEqual(sub.entries.map((e) => e.name), ["inner.txt"]);
      await client.send({ type: "list", path: "a.txt", recursive: false });
      await client.expectError("NOT_FOUND");
      await client.send({ type: "list", path: "nope", recursive: false });
      await client.expectError("NOT_FOUND");
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() lists a tree recursively, each folder before its contents, without looping", async () => {
  await withServer({
    files: {
      "top.txt": "t",
      "docs/a.md": "a",
      "docs/deep/b.md": "bb",
      "empty/.keep": "",
    },
  }, async ({ port, root }) => {
    // A symbolic link cycle: docs/deep/up -> docs; two more links to folders.
    await Deno.symlink(`${root}/docs`, `${root}/docs/deep/up`);
    await Deno.symlink("docs", `${root}/a-link`);
    await Deno.symlink("../empty", `${root}/docs/ext`);
    const client = await RawClient.open(port);
    try {
      const { entries, count } = await list(client, "", true);
      const names = entries.map((e) => e.name);
      assert.equal(count, entries.length);
      // Linked folders inside the listed tree are shown, not entered.
      assert.deepEqual(names, [
        "a-link",
        "docs",
        "docs/deep",
        "docs/deep/up",
        "docs/deep/b.md",
        "docs/ext",
        "docs/a.md",
        "empty",
        "empty/.keep",
        "top.txt",
      ]);
      assert.equal(entries[0].kind, "dir");
      assert.equal(entries[3].kind, "dir");
      for (const [i, name] of names.entries()) {
        const parent = name.slice(0, name.lastIndexOf("/"));
        if (parent) {
          assert.ok(names.indexOf(parent) < i, `${parent} before ${name}`);
        }
      }
      const sub = await list(client, "docs", true);
      // A linked folder outside the listed tree is entered once.
      assert.deepEqual(sub.entries.map((e) => e.name), [
        "deep",
        "deep/up",
        "deep/b.md",
        "ext",
        "ext/.keep",
        "a.md",
      ]);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() splits a long listing into ENTRIES frames under MAX_FRAME_BYTES", async () => {
  await withServer({}, async ({ port, root }) => {
    // Deep folders with long names make long entries: few files fill 1 MiB.
    const deep = Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(250, "d"));
    await Deno.mkdir(`${root}/${deep.join("/")}`, { recursive: true });
    const files = 340;
    for (let i = 0; i < files; i++) {
      const name = `${String(i).padStart(4, "0")}`.padEnd(200, "f");
      await Deno.writeTextFile(`${root}/${deep.join("/")}/${name}`, "");
    }
    const total = deep.length + files;
    const client = await RawClient.open(port);
    try {
      await client.send({ type: "list", path: "", recursive: true });
      let received = 0;
      let batches = 0;
      while (true) {
        // Measure each frame's size through its header before decoding.
        const header = await client.readRaw(FRAME_HEADER_BYTES);
        const length = new DataView(header.buffer).getUint32(1);
        assert.ok(length <= MAX_FRAME_BYTES);
        const payload = await client.readRaw(length);
        if (header[0] === 0x21) {
          assert.equal(new DataView(payload.buffer).getUint32(0), total);
          break;
        }
        assert.equal(header[0], 0x20);
        received += new DataView(payload.buffer).getUint32(0);
        batches++;
      }
      assert.equal(received, total);
      assert.ok(batches >= 2, `${batches} batches`);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() describes files, folders and the root with INFO", async () => {
  await withServer({ files: { "docs/a.txt": "abc" } }, async ({ port }) => {
    const client = await RawClient.open(port);
    try {
      await client.send({ type: "stat", path: "docs/a.txt" });
      const file = (await client.expect("info")).entry;
      assert.deepEqual([file.name, file.kind, file.size], ["a.txt", "file", 3]);
      await client.send({ type: "stat", path: "docs" });
      const folder = (await client.expect("info")).entry;
      assert.deepEqual([folder.name, folder.kind, folder.size], [
        "docs",
        "dir",
        0,
      ]);
      await client.send({ type: "stat", path: "" });
      const root = (await client.expect("info")).entry;
      assert.deepEqual([root.name, root.kind], ["", "dir"]);
      await client.send({ type: "stat", path: "docs/missing" });
      await client.expectError("NOT_FOUND");
      await client.send({ type: "stat", path: "docs/a.txt" });
      await client.expect("info"); // still usable after an error
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() sends a file with DATA, its raw bytes and its SHA-256", async () => {
  const content = testBytes(3 * 1024 * 1024 + 17);
  await withServer(
    { files: { "big.bin": content, "empty": "" } },
    async (t) => {
      const client = await RawClient.open(t.port);
      try {
        const got = await client.get("big.bin");
        assert.equal(got.size, content.length);
        assert.deepEqual(got.bytes, content);
        assert.equal(got.trailer?.type, "hash");
        assert.deepEqual(
          (got.trailer as { digest: Uint8Array }).digest,
          sha256(content),
        );
        const mtime = (await Deno.stat(`${t.root}/big.bin`)).mtime!.getTime();
        assert.equal(got.mtime, mtime);
        const empty = await client.get("empty");
        assert.equal(empty.size, 0);
        assert.deepEqual(
          (empty.trailer as { digest: Uint8Array }).digest,
          sha256(new Uint8Array()),
        );
        await client.send({ type: "get", path: "", offset: 0 });
        await client.expectError("FORBIDDEN"); // a folder
        const event = await t.waitForLog((e) =>
          e.request === "GET" && e.path === "big.bin"
        );
        assert.equal(event.bytes, content.length);
        assert.equal(event.result, "ok");
        assert.equal(event.protocol, "ferry");
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("serve() resumes a download from an offset and hashes the whole file", async () => {
  const content = testBytes(2 * 1024 * 1024 + 5, 7);
  await withServer({ files: { "f.bin": content } }, async ({ port }) => {
    const client = await RawClient.open(port);
    try {
      for (const offset of [1, 1024 * 1024 + 3, content.length]) {
        const got = await client.get("f.bin", offset);
        assert.deepEqual(got.bytes, content.subarray(offset));
        assert.deepEqual(
          (got.trailer as { digest: Uint8Array }).digest,
          sha256(content),
        );
      }
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() sends a file again from its cached digest, whole and from offsets, byte-exact", async () => {
  // With --allow-ffi on Linux a cached file goes out by sendfile
  // (`_server/zero_copy.ts`): the bytes never pass through the server.
  const content = testBytes(5 * 1024 * 1024 + 3, 11);
  await withServer({ allowUpload: true }, async (t) => {
    const client = await RawClient.open(t.port);
    try {
      // An upload with an older mtime leaves its digest in the cache (a
      // file just written would be too recent to be trusted).
      const mtime = Date.now() - 60_000;
      assert.equal((await client.put("f.bin", content, { mtime }))?.type, "ok");
      for (const offset of [0, 3 * 1024 * 1024 + 1, content.length]) {
        const got = await client.get("f.bin", offset);
        assert.deepEqual(got.bytes, content.subarray(offset));
        assert.deepEqual(
          (got.trailer as { digest: Uint8Array }).digest,
          sha256(content),
        );
      }
      const isGet = (e: { request: string }) => e.request === "GET";
      await t.waitForLog(() => t.logs.filter(isGet).length === 3);
      const gets = t.logs.filter(isGet);
      assert.deepEqual(gets.map((e) => e.cached === true), [true, true, true]);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() refuses an offset past the end with BAD_REQUEST and keeps the connection", async () => {
  await withServer({ files: { "f.txt": "abc" } }, async ({ port }) => {
    const client = await RawClient.open(port);
    try {
      await client.send({ type: "get", path: "f.txt", offset: 4 });
      await client.expectError("BAD_REQUEST");
      const got = await client.get("f.txt");
      assert.equal(new TextDecoder().decode(got.bytes), "abc");
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() answers pipelined requests in order", async () => {
  await withServer(
    { files: { "a.txt": "A", "b.txt": "BB" } },
    async ({ port }) => {
      const client = await RawClient.open(port);
      try {
        await client.sendBytes(
          new Uint8Array([
            ...encodeMessage({ type: "get", path: "a.txt", offset: 0 }),
            ...encodeMessage({ type: "stat", path: "missing" }),
            ...encodeMessage({ type: "get", path: "b.txt", offset: 0 }),
          ]),
        );
        assert.equal((await client.expect("data")).size, 1);
        assert.deepEqual(
          await client.readRaw(1),
          new TextEncoder().encode("A"),
        );
        await client.expect("hash");
        await client.expectError("NOT_FOUND");
        assert.equal((await client.expect("data")).size, 2);
        assert.deepEqual(
          await client.readRaw(2),
          new TextEncoder().encode("BB"),
        );
        await client.expect("hash");
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("serve() reports CHANGED when a file grows while it is sent", async () => {
  const size = 48 * 1024 * 1024;
  await withServer({}, async ({ port, root }) => {
    const path = `${root}/growing.bin`;
    await Deno.writeFile(path, new Uint8Array(size));
    const client = await RawClient.open(port);
    try {
      await client.send({ type: "get", path: "growing.bin", offset: 0 });
      const data = await client.expect("data");
      assert.equal(data.size, size);
      // The server cannot have sent 48 MiB yet: nobody read them.
      const file = await Deno.open(path, { append: true });
      await file.write(new Uint8Array([1]));
      file.close();
      const sink = new Uint8Array(1024 * 1024);
      let left = size;
      while (left > 0) {
        const n = await client.reader.read(
          sink.subarray(0, Math.min(left, sink.length)),
        );
        assert.notEqual(n, null);
        left -= n!;
      }
      await client.expectError("CHANGED");
      await client.send({ type: "stat", path: "growing.bin" });
      assert.equal((await client.expect("info")).entry.size, size + 1);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() refuses uploads when allowUpload is off", async () => {
  await withServer({}, async ({ port, root }) => {
    const client = await RawClient.open(port);
    try {
      await client.send({
        type: "put",
        path: "new.txt",
        size: 3,
        overwrite: false,
        resume: false,
      });
      await client.expectError("FORBIDDEN");
      await client.send({ type: "stat", path: "" });
      await client.expect("info");
      assert.deepEqual(await treeNames(root), []);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() stores an upload with its mtime and refuses to overwrite without the flag", async () => {
  await withServer(
    { allowUpload: true, files: { "docs/old.txt": "old" } },
    async (t) => {
      const client = await RawClient.open(t.port);
      try {
        const content = testBytes(1024 * 1024 + 99, 3);
        const mtime = Date.UTC(2020, 0, 2, 3, 4, 5);
        const reply = await client.put("docs/new.bin", content, { mtime });
        assert.equal(reply?.type, "ok", JSON.stringify(reply));
        assert.deepEqual(
          await Deno.readFile(`${t.root}/docs/new.bin`),
          content,
        );
        assert.equal(
          (await Deno.stat(`${t.root}/docs/new.bin`)).mtime?.getTime(),
          mtime,
        );
        const event = await t.waitForLog((e) => e.request === "PUT");
        assert.deepEqual([event.path, event.bytes, event.result], [
          "docs/new.bin",
          content.length,
          "ok",
        ]);

        const refused = await client.put(
          "docs/old.txt",
          new TextEncoder().encode("new"),
        );
        assert.equal(refused?.type, "error");
        assert.equal((refused as { code: string }).code, "EXISTS");
        assert.equal(await Deno.readTextFile(`${t.root}/docs/old.txt`), "old");

        const replaced = await client.put(
          "docs/old.txt",
          new TextEncoder().encode("new!"),
          {
            overwrite: true,
          },
        );
        assert.equal(replaced?.type, "ok");
        assert.equal(await Deno.readTextFile(`${t.root}/docs/old.txt`), "new!");

        const empty = await client.put("empty.txt", new Uint8Array());
        assert.equal(empty?.type, "ok");
        assert.equal((await Deno.stat(`${t.root}/empty.txt`)).size, 0);

        await client.send({
          type: "put",
          path: "nope/x.txt",
          size: 1,
          overwrite: false,
          resume: false,
        });
        await client.expectError("NOT_FOUND");
        await client.send({
          type: "put",
          path: "docs",
          size: 1,
          overwrite: true,
          resume: false,
        });
        await client.expectError("FORBIDDEN");
        await client.send({
          type: "put",
          path: "",
          size: 1,
          overwrite: true,
          resume: false,
        });
        await client.expectError("FORBIDDEN");
        assert.deepEqual(await treeNames(t.root), [
          "docs",
          "docs/new.bin",
          "docs/old.txt",
          "empty.txt",
        ]);
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("serve() discards an upload whose SHA-256 does not match", async () => {
  await withServer({ allowUpload: true }, async ({ port, root }) => {
    const client = await RawClient.open(port);
    try {
      const reply = await client.put("x.bin", testBytes(5000), {
        hash: new Uint8Array(32),
      });
      assert.equal(reply?.type, "error");
      assert.equal((reply as { code: string }).code, "INTEGRITY");
      assert.deepEqual(await treeNames(root), []);
      // The connection stays usable.
      const again = await client.put("x.bin", testBytes(5000));
      assert.equal(again?.type, "ok");
      assert.deepEqual(await treeNames(root), ["x.bin"]);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() discards an upload cut short and leaves nothing behind", async () => {
  await withServer(
    { allowUpload: true },
    async ({ port, root, waitForLog }) => {
      const client = await RawClient.open(port);
      try {
        await client.send({
          type: "put",
          path: "cut.bin",
          size: 4 * 1024 * 1024,
          overwrite: false,
          resume: false,
        });
        await client.expect("ready");
        await client.sendBytes(testBytes(100_000));
        assert.equal((await treeNames(root)).length, 1); // the temporary file
      } finally {
        client.close();
      }
      const event = await waitForLog((e) => e.request === "PUT");
      assert.equal(event.result, "CONNECTION");
      assert.equal(event.path, "cut.bin");
      assert.deepEqual(await treeNames(root), []);
    },
  );
});

Deno.test("serve() discards an upload followed by a garbage frame instead of HASH", async () => {
  await withServer({ allowUpload: true }, async ({ port, root }) => {
    const client = await RawClient.open(port);
    try {
      await client.send({
        type: "put",
        path: "g.bin",
        size: 3,
        overwrite: false,
        resume: false,
      });
      await client.expect("ready");
      await client.sendBytes(new Uint8Array([1, 2, 3]));
      await client.send({ type: "ok" });
      await client.expectError("BAD_REQUEST");
      assert.equal(await client.next(), null);
      assert.deepEqual(await treeNames(root), []);
    } finally {
      client.close();
    }
  });
});

Deno.test("serve() serves 20 concurrent clients", async () => {
  const content = testBytes(512 * 1024 + 1, 11);
  await withServer({ files: { "shared.bin": content } }, async ({ port }) => {
    const digest = sha256(content);
    await Promise.all(Array.from({ length: 20 }, async () => {
      const client = await RawClient.open(port);
      try {
        for (let i = 0; i < 3; i++) {
          const got = await client.get("shared.bin", i * 1000);
          assert.deepEqual(got.bytes, content.subarray(i * 1000));
          assert.deepEqual(
            (got.trailer as { digest: Uint8Array }).digest,
            digest,
          );
        }
      } finally {
        client.close();
      }
    }));
  });
});

Deno.test("serve() closes open connections on shutdown and finished settles", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const server = await serve({ root, port: 0 });
    const idle = await RawClient.open(server.addr.port);
    const silent = await RawClient.connect(server.addr.port);
    try {
      // Make sure the server has accepted both before it stops.
      await idle.send({ type: "stat", path: "" });
      await idle.expect("info");
      await server.shutdown();
      assert.equal(await idle.next(), null);
      assert.ok(await silent.closedByPeer());
      await assert.rejects(() =>
        Deno.connect({ hostname: "127.0.0.1", port: server.addr.port })
      );
      await server.finished; // settles again
    } finally {
      idle.close();
      silent.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve() removes the temporary file of an upload cut by shutdown", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    // The upload stalls, so the drain deadline is what ends it.
    const server = await serve({
      root,
      port: 0,
      allowUpload: true,
      drainMs: 100,
    });
    const client = await RawClient.open(server.addr.port);
    try {
      await client.send({
        type: "put",
        path: "big.bin",
        size: 1 << 24,
        overwrite: false,
        resume: false,
      });
      await client.expect("ready");
      await client.sendBytes(testBytes(200_000));
      await server.shutdown();
      assert.deepEqual(await treeNames(root), []);
    } finally {
      client.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve() stops on an already aborted signal and on asyncDispose", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const server = await serve({ root, port: 0, signal: AbortSignal.abort() });
    await server.finished;
    {
      await using disposable = await serve({ root, port: 0 });
      assert.ok(disposable.addr.port > 0);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve() refuses a missing root with NOT_FOUND", async () => {
  const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await assert.rejects(
      () => serve({ root: `${base}/missing`, port: 0 }),
      (error) => error instanceof FerryError && error.code === "NOT_FOUND",
    );
    await Deno.writeTextFile(`${base}/file`, "");
    await assert.rejects(
      () => serve({ root: `${base}/file`, port: 0 }),
      (error) => error instanceof FerryError && error.code === "NOT_FOUND",
    );
    await assert.rejects(() => serve({ root: base, port: 70000 }), RangeError);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("serve() closes a non-ferry connection when classic is false", async () => {
  await withServer(
    { classic: false, files: { "a.txt": "a" } },
    async ({ port }) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(new TextEncoder().encode("a.txt"));
        const buffer = new Uint8Array(16);
        assert.equal(await conn.read(buffer), null);
      } finally {
        conn.close();
      }
    },
  );
});

Deno.test("serve() drops a peer that sends half a HELLO after handshakeTimeoutMs", async () => {
  await withServer(
    { handshakeTimeoutMs: 200 },
    async ({ port, waitForLog }) => {
      const client = await RawClient.connect(port);
      try {
        await client.sendBytes(
          encodeMessage({
            type: "hello",
            minVersion: 1,
            maxVersion: 1,
            flags: 0,
            nonce: new Uint8Array(0),
          }).subarray(0, 7),
        );
        assert.ok(await client.closedByPeer());
        const event = await waitForLog((e) => e.request === "HELLO");
        assert.equal(event.result, "TIMEOUT");
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("serve() survives an onLog that throws", async () => {
  await withServer({
    files: { "a.txt": "a" },
    onLog() {
      throw new Error("log sink broke");
    },
  }, async ({ port }) => {
    const client = await RawClient.open(port);
    try {
      await client.send({ type: "stat", path: "a.txt" });
      await client.expect("info");
      await client.send({ type: "stat", path: "a.txt" });
      await client.expect("info");
    } finally {
      client.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Command line

Deno.test("server.ts --help prints USAGE and OPTIONS with defaults", async () => {
  const { code, stdout, stderr } = await runScript(SERVER_SCRIPT, ["--help"]);
  assert.equal(code, 0);
  assert.equal(stderr, "");
  assert.match(stdout, /^USAGE:/m);
  assert.match(stdout, /^OPTIONS:/m);
  for (
    const flag of [
      "--root",
      "--host",
      "--port",
      "--allow-upload",
      "--no-classic",
      "--quiet",
      "--help",
    ]
  ) {
    assert.ok(stdout.includes(flag), flag);
  }
  assert.match(stdout, /default: 65432/);
});

Deno.test("server.ts refuses an unknown flag and a bad port with exit code 2", async () => {
  const unknown = await runScript(SERVER_SCRIPT, ["--bogus"]);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stdout, "");
  assert.match(unknown.stderr.split("\n")[0], /^ferry-server: .*--bogus/);
  assert.match(unknown.stderr, /USAGE:/);
  const port = await runScript(SERVER_SCRIPT, ["--port", "http"]);
  assert.equal(port.code, 2);
  assert.equal(port.stderr.split("\n")[0], "ferry-server: bad port: http");
  const extra = await runScript(SERVER_SCRIPT, ["stray"]);
  assert.equal(extra.code, 2);
});

Deno.test("server.ts reports a missing root on one line with exit code 1", async () => {
  const { code, stdout, stderr } = await runScript(SERVER_SCRIPT, [
    "--root",
    "/definitely/not/here",
    "--port",
    "0",
  ]);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    "ferry-server: root folder not found: /definitely/not/here\n",
  );
});

Deno.test({
  name:
    "server.ts prints where it listens, logs requests and exits 0 on SIGTERM",
  ignore: Deno.build.os === "windows",
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      await Deno.writeTextFile(`${root}/hi.txt`, "hi\n");
      const server = await spawnScript(SERVER_SCRIPT, [
        "--root",
        root,
        "--port",
        "0",
      ]);
      const match = server.head.match(
        /^Listening on tcp:\/\/127\.0\.0\.1:(\d+) \(root (.*), read-only\)\n$/,
      );
      assert.ok(match, server.head);
      assert.equal(match[2], await Deno.realPath(root));
      const client = await RawClient.open(Number(match[1]));
      try {
        const got = await client.get("hi.txt");
        assert.equal(new TextDecoder().decode(got.bytes), "hi\n");
      } finally {
        client.close();
      }
      server.child.kill("SIGTERM");
      const { code, stderr } = await server.finish();
      assert.equal(code, 0);
      assert.match(stderr, /127\.0\.0\.1:\d+ ferry GET "hi\.txt" 3 ok /);
      assert.equal(stderr.trim().split("\n").length, 1);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
