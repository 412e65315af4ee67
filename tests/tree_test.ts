import assert from "node:assert/strict";
import { connect } from "../client.ts";
import { runClient } from "./_util/client.ts";
import { CLIENT_SCRIPT } from "./_util/util.ts";
import { withServer } from "./_util/server.ts";
import { getTree } from "../_client/tree_get.ts";
import { putTree } from "../_client/tree_put.ts";
import { nativeRead } from "../_client/native_read.ts";
import { FerryError } from "../errors.ts";

const OLD = Date.UTC(2020, 0, 2, 3, 4, 5);

/** Every file and folder under `root`: relative name -> kind, size, mtime. */
async function snapshot(
  root: string,
): Promise<Map<string, { kind: string; size: number; mtime: number }>> {
  const found = new Map<
    string,
    { kind: string; size: number; mtime: number }
  >();
  async function walk(folder: string, prefix: string): Promise<void> {
    for await (const entry of Deno.readDir(folder)) {
      const path = `${folder}/${entry.name}`;
      const info = await Deno.lstat(path);
      const name = prefix + entry.name;
      found.set(name, {
        kind: info.isDirectory ? "dir" : info.isFile ? "file" : "other",
        size: info.isFile ? info.size : 0,
        mtime: info.mtime!.getTime(),
      });
      if (info.isDirectory) await walk(path, name + "/");
    }
  }
  await walk(root, "");
  return found;
}

/** A tree with nested and empty folders, unicode names and old times. */
async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(`${root}/a/b/c`, { recursive: true });
  await Deno.mkdir(`${root}/empty`);
  await Deno.mkdir(`${root}/a/ünïcødé 日本`);
  await Deno.writeTextFile(`${root}/top.txt`, "top\n");
  await Deno.writeTextFile(`${root}/a/one.txt`, "one");
  await Deno.writeFile(
    `${root}/a/b/c/deep.bin`,
    new Uint8Array(70_000).fill(7),
  );
  await Deno.writeTextFile(`${root}/a/ünïcødé 日本/ß.txt`, "ß");
  await Deno.writeFile(`${root}/a/b/zero`, new Uint8Array(0));
  let minute = 0;
  for (
    const name of [
      "top.txt",
      "a/one.txt",
      "a/b/c/deep.bin",
      "a/ünïcødé 日本/ß.txt",
      "a/b/zero",
      "a/b/c",
      "a/b",
      "a/ünïcødé 日本",
      "empty",
      "a",
    ]
  ) {
    const time = new Date(OLD + 60_000 * minute++);
    await Deno.utime(`${root}/${name}`, time, time);
  }
}

Deno.test("getTree() copies nested and empty folders, unicode names and times of files and folders", async () => {
  await withServer({}, async ({ port, root, base }) => {
    await makeTree(`${root}/tree`);
    const before = await snapshot(`${root}/tree`);
    await using client = await connect({ port });
    const report = await getTree(client, "tree", `${base}/copy`);
    assert.equal(report.failed, 0);
    assert.equal(report.total, before.size);
    assert.deepEqual(await snapshot(`${base}/copy`), before);
    assert.equal(
      await Deno.readTextFile(`${base}/copy/a/ünïcødé 日本/ß.txt`),
      "ß",
    );
  });
});

Deno.test("putTree() uploads nested and empty folders, unicode names and times of files and folders", async () => {
  await withServer({ allowUpload: true }, async ({ port, root, base }) => {
    await makeTree(`${base}/local`);
    const before = await snapshot(`${base}/local`);
    await using client = await connect({ port });
    const report = await putTree(client, `${base}/local`, "up/loaded");
    assert.equal(report.failed, 0);
    assert.deepEqual(report.skipped, []);
    assert.deepEqual(await snapshot(`${root}/up/loaded`), before);
    const top = await Deno.stat(`${base}/local`);
    assert.equal(
      (await Deno.stat(`${root}/up/loaded`)).mtime!.getTime(),
      top.mtime!.getTime(),
    );
  });
});

Deno.test("putTree() reports files the server refuses among many accepted, each in its place", async () => {
  await withServer({ allowUpload: true }, async ({ port, root, base }) => {
    await Deno.mkdir(`${base}/local/d`, { recursive: true });
    await Deno.mkdir(`${root}/up/d`, { recursive: true });
    for (let i = 0; i < 300; i++) {
      await Deno.writeTextFile(`${base}/local/d/f${i}`, `new ${i}`);
      // Every seventh one is already on the server.
      if (i % 7 === 3) await Deno.writeTextFile(`${root}/up/d/f${i}`, "old");
    }
    await using client = await connect({ port });
    const report = await putTree(client, `${base}/local`, "up");
    const codes = new Map(
      report.outcomes.map((o) => [o.path, o.error?.code ?? "ok"]),
    );
    for (let i = 0; i < 300; i++) {
      assert.equal(codes.get(`up/d/f${i}`), i % 7 === 3 ? "EXISTS" : "ok");
      assert.equal(
        await Deno.readTextFile(`${root}/up/d/f${i}`),
        i % 7 === 3 ? "old" : `new ${i}`,
      );
    }
    assert.equal(report.failed, 43);
  });
});

Deno.test("putTree() skips and reports symbolic links inside the local tree", async () => {
  await withServer({ allowUpload: true }, async ({ port, root, base }) => {
    await Deno.mkdir(`${base}/local/sub`, { recursive: true });
    await Deno.writeTextFile(`${base}/local/sub/real.txt`, "real");
    await Deno.writeTextFile(`${base}/secret.txt`, "secret");
    await Deno.symlink(`${base}/secret.txt`, `${base}/local/sub/link.txt`);
    await Deno.symlink(base, `${base}/local/up`);
    await using client = await connect({ port });
    const report = await putTree(client, `${base}/local`, "");
    assert.equal(report.failed, 0);
    assert.deepEqual(report.skipped.map((s) => s.name).sort(), [
      "sub/link.txt",
      "up",
    ]);
    assert.equal(await Deno.readTextFile(`${root}/sub/real.txt`), "real");
    await assert.rejects(
      Deno.lstat(`${root}/sub/link.txt`),
      Deno.errors.NotFound,
    );
    await assert.rejects(Deno.lstat(`${root}/up`), Deno.errors.NotFound);
  });
});

Deno.test("FerryClient.mkdir() creates parents, sets times and is refused without uploads", async () => {
  await withServer({ allowUpload: true }, async ({ port, root, base }) => {
    await using client = await connect({ port });
    await client.mkdir("x/y/z", { mtime: OLD });
    assert.equal((await Deno.stat(`${root}/x/y/z`)).mtime!.getTime(), OLD);
    await client.mkdir("x/y/z"); // already there: fine
    await Deno.writeTextFile(`${root}/file`, "f");
    await assert.rejects(
      client.mkdir("file/sub"),
      (error) => error instanceof FerryError && error.code === "EXISTS",
    );
    await Deno.symlink(base, `${root}/out`);
    await assert.rejects(
      client.mkdir("out/evil"),
      (error) => error instanceof FerryError && error.code === "FORBIDDEN",
    );
    await assert.rejects(Deno.lstat(`${base}/evil`), Deno.errors.NotFound);
    await assert.rejects(
      client.mkdir("../evil"),
      (error) => error instanceof FerryError && error.code === "FORBIDDEN",
    );
    await client.mkdir(""); // the root exists
  });
  await withServer({}, async ({ port, root }) => {
    await using client = await connect({ port });
    await assert.rejects(
      client.mkdir("new"),
      (error) => error instanceof FerryError && error.code === "FORBIDDEN",
    );
    await assert.rejects(Deno.lstat(`${root}/new`), Deno.errors.NotFound);
  });
});

Deno.test("FerryClient.getMany() goes on after a per-file refusal", async () => {
  await withServer({
    files: { "a.txt": "a", "c.txt": "c" },
  }, async ({ port, base }) => {
    await using client = await connect({ port });
    const outcomes = await client.getMany(
      ["a.txt", "missing.txt", "../x", "c.txt"].map((path, i) => ({
        path,
        destination: `${base}/out${i}`,
      })),
      { window: 2 },
    );
    assert.deepEqual(
      outcomes.map((outcome) => outcome.error?.code ?? "ok"),
      ["ok", "NOT_FOUND", "FORBIDDEN", "ok"],
    );
    assert.equal(await Deno.readTextFile(`${base}/out0`), "a");
    assert.equal(await Deno.readTextFile(`${base}/out3`), "c");
    await assert.rejects(Deno.lstat(`${base}/out1.part`), Deno.errors.NotFound);
    // The session is still usable.
    assert.equal((await client.stat("a.txt")).size, 1);
  });
});

Deno.test("FerryClient.getMany() never saves one file's bytes under another's name (c, c.part, duplicates)", async () => {
  await withServer({
    files: { "c": "content of c\n", "c.part": "part\n", "d": "d\n" },
  }, async ({ port, base }) => {
    await using client = await connect({ port });
    const run = (names: string[], folder: string) =>
      client.getMany(
        names.map((path) => ({
          path,
          destination: `${base}/${folder}/${path}`,
        })),
      );
    // c.part is saved first; c's temporary name is c.part: c is refused
    // rather than saved with the bytes of c.part (or c.part destroyed).
    await Deno.mkdir(`${base}/one`);
    let outcomes = await run(["c.part", "c"], "one");
    assert.deepEqual(outcomes.map((o) => o.error?.code ?? "ok"), [
      "ok",
      "LOCAL",
    ]);
    assert.equal(await Deno.readTextFile(`${base}/one/c.part`), "part\n");
    await assert.rejects(Deno.lstat(`${base}/one/c`), Deno.errors.NotFound);
    // The other order works: each file under its own name.
    await Deno.mkdir(`${base}/two`);
    outcomes = await run(["c", "c.part", "d", "d"], "two");
    assert.deepEqual(outcomes.map((o) => o.error?.code ?? "ok"), [
      "ok",
      "ok",
      "ok",
      "EXISTS",
    ]);
    assert.equal(await Deno.readTextFile(`${base}/two/c`), "content of c\n");
    assert.equal(await Deno.readTextFile(`${base}/two/c.part`), "part\n");
    assert.equal(await Deno.readTextFile(`${base}/two/d`), "d\n");
    // One file spelled two ways is one name: the second waits for the
    // first, then finds it saved.
    await Deno.mkdir(`${base}/three`);
    outcomes = await client.getMany([
      { path: "d", destination: `${base}/three/d` },
      { path: "d", destination: `${base}/three/../three//./d` },
    ]);
    assert.deepEqual(outcomes.map((o) => o.error?.code ?? "ok"), [
      "ok",
      "EXISTS",
    ]);
  });
});

Deno.test("client.ts get -r copies 1,000 files over one connection", async () => {
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 1000; i++) {
    files[`many/d${i % 10}/f${i}.bin`] = new Uint8Array(4096).fill(i % 251);
  }
  await withServer({ files }, async ({ port, base, logs }) => {
    const { code, stdout, stderr } = await runClient(
      ["--port", String(port), "get", "-r", "many", "-o", `${base}/copy`],
    );
    assert.equal(stderr, "");
    assert.equal(code, 0);
    assert.match(stdout, /1000 files, 4096000 bytes/);
    const gets = logs.filter((event) => event.request === "GET");
    assert.equal(gets.length, 1000);
    assert.ok(gets.every((event) => event.result === "ok"));
    assert.equal(new Set(logs.map((event) => event.peer)).size, 1);
    const copied = await snapshot(`${base}/copy`);
    assert.equal(
      [...copied.values()].filter((e) => e.kind === "file").length,
      1000,
    );
    assert.deepEqual(
      await Deno.readFile(`${base}/copy/d7/f517.bin`),
      files["many/d7/f517.bin"],
    );
  });
});

Deno.test("client.ts get -r saves the same tree with libc (-A) as with Deno calls only (no --allow-ffi)", async () => {
  await withServer({}, async ({ port, root, base }) => {
    await makeTree(`${root}/tree`);
    const before = await snapshot(`${root}/tree`);
    const copies: Record<string, string[]> = {
      native: ["-A"],
      deno: ["--allow-net=127.0.0.1", "--allow-read", "--allow-write"],
    };
    for (const [name, permissions] of Object.entries(copies)) {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...permissions,
          CLIENT_SCRIPT,
          "--port",
          String(port),
          "get",
          "-r",
          "tree",
          "-o",
          `${base}/${name}`,
          "-q",
        ],
        stdout: "null",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      assert.equal(new TextDecoder().decode(stderr), "");
      assert.equal(code, 0);
      assert.deepEqual(await snapshot(`${base}/${name}`), before, name);
    }
    for (const file of ["top.txt", "a/b/c/deep.bin", "a/ünïcødé 日本/ß.txt"]) {
      assert.deepEqual(
        await Deno.readFile(`${base}/native/${file}`),
        await Deno.readFile(`${base}/deno/${file}`),
      );
    }
  });
});

Deno.test("getTree() counts in onListed's total the files it refuses to place, so that the files reported never exceed it", async () => {
  const files = { "t/a/x.txt": "x", "t/b.txt": "b" };
  await withServer({ files }, async ({ port, base }) => {
    // A file where the folder a/ goes: a/ and a/x.txt are refused.
    await Deno.mkdir(`${base}/copy`);
    await Deno.writeTextFile(`${base}/copy/a`, "local");
    await using client = await connect({ port });
    let total: number | undefined;
    const report = await getTree(client, "t", `${base}/copy`, {
      onListed: (count) => total = count,
    });
    const reported = report.outcomes.filter((o) => o.kind === "file");
    assert.deepEqual(
      reported.map((o) => [o.path, o.error === undefined]).sort(),
      [["t/a/x.txt", false], ["t/b.txt", true]],
    );
    assert.equal(total, reported.length);
  });
});

Deno.test("putTree() rejects with what onListed threw, once the files sent are answered, and the session still works", async () => {
  await withServer({ allowUpload: true }, async ({ port, root, base }) => {
    await Deno.mkdir(`${base}/local/sub`, { recursive: true });
    await Deno.writeTextFile(`${base}/local/a.txt`, "a");
    await Deno.writeTextFile(`${base}/local/sub/b.txt`, "b");
    await using client = await connect({ port });
    const thrown = new Error("onListed failed");
    await assert.rejects(
      () =>
        putTree(client, `${base}/local`, "up", {
          onListed: () => {
            throw thrown;
          },
        }),
      (error) => error === thrown,
    );
    assert.equal(await Deno.readTextFile(`${root}/up/sub/b.txt`), "b");
    assert.equal((await client.stat("up/a.txt")).size, 1);
  });
});

// The walk holds folders by descriptor only through libc (Linux, with
// --allow-ffi); without it a swap inside a folder is not caught.
const WALK_HELD = nativeRead() !== undefined;

Deno.test({
  name:
    `putTree() never sends a file from outside the tree when its folder is swapped for a link after the walk reached the folder${
      WALK_HELD ? "" : " (ignored: needs Linux and --allow-ffi)"
    }`,
  ignore: !WALK_HELD,
}, async () => {
  await withServer({ allowUpload: true }, async ({ port, root, base }) => {
    await Deno.mkdir(`${base}/local/sub`, { recursive: true });
    await Deno.mkdir(`${base}/outside`);
    await Deno.writeTextFile(`${base}/local/sub/a`, "a");
    await Deno.writeTextFile(`${base}/local/sub/b`, "b");
    await Deno.writeTextFile(`${base}/outside/b`, "secret");
    await using client = await connect({ port });
    const report = await putTree(client, `${base}/local`, "up", {
      onStart: (remote) => {
        if (remote !== "up/sub/a") return;
        // While the walk holds sub (the folder it read) and before it
        // reaches sub/b.
        Deno.renameSync(`${base}/local/sub`, `${base}/local/sub.old`);
        Deno.symlinkSync(`${base}/outside`, `${base}/local/sub`);
      },
    });
    // Either refused as replaced, or read from the folder the walk holds:
    // never the file behind the link.
    const b = report.outcomes.find((o) => o.path === "up/sub/b");
    assert.ok(b !== undefined);
    assert.equal(await Deno.readTextFile(`${root}/up/sub/a`), "a");
    if (b.error !== undefined) {
      assert.equal(b.error.code, "LOCAL");
      await assert.rejects(() => Deno.stat(`${root}/up/sub/b`));
    } else {
      assert.equal(await Deno.readTextFile(`${root}/up/sub/b`), "b");
    }
  });
});

Deno.test("FerryClient.getListed() plans a long listing batch by batch as the server walks it", async () => {
  const files: Record<string, string> = {};
  // Long names: a 32 KiB frame holds about 150 of them.
  for (let i = 0; i < 400; i++) files[`big/${"n".repeat(200)}${i}`] = "";
  await withServer({ files }, async ({ port }) => {
    await using client = await connect({ port });
    const batches: number[] = [];
    let listed = 0;
    const outcomes = await client.getListed("big", (entries) => {
      batches.push(entries.length);
      return [];
    }, { onListed: () => listed++ });
    assert.deepEqual(outcomes, []);
    assert.equal(listed, 1);
    assert.equal(batches.reduce((a, b) => a + b, 0), 400);
    // The server sends a frame every 32 KiB, not one frame of all.
    assert.ok(batches.length >= 2, `batches: ${batches}`);
  });
});

Deno.test("getTree() rejects with what onListed threw and leaves no part of the GETs already sent", async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 50; i++) files[`t/f${i}.txt`] = `file ${i}`;
  await withServer({ files }, async ({ port, base }) => {
    await using client = await connect({ port });
    const thrown = new Error("onListed failed");
    await assert.rejects(
      getTree(client, "t", `${base}/copy`, {
        onListed: () => {
          throw thrown;
        },
      }),
      (error) => error === thrown,
    );
    const left = [...Deno.readDirSync(`${base}/copy`)].map((e) => e.name);
    assert.deepEqual(left.filter((name) => name.endsWith(".part")), []);
  });
});

Deno.test("getTree() over the client's listing limit fails with TOO_LARGE after sending its first GETs, and leaves no part", async () => {
  const files: Record<string, string> = {};
  // Long names: the first 32 KiB frame holds about 150 of them, whose GETs
  // leave before the second frame goes over the limit.
  for (let i = 0; i < 400; i++) files[`big/${"n".repeat(200)}${i}`] = "x";
  await withServer({ files }, async ({ port, base }) => {
    await using client = await connect({ port, maxListEntries: 250 });
    await assert.rejects(
      getTree(client, "big", `${base}/copy`),
      (error) => error instanceof FerryError && error.code === "TOO_LARGE",
    );
    const left = [...Deno.readDirSync(`${base}/copy`)].map((e) => e.name);
    assert.deepEqual(left.filter((name) => name.endsWith(".part")), []);
  });
});

Deno.test("client.ts get -r goes on when a file disappears between LIST and GET, then exits 1 with a summary", async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 20; i++) {
    files[`docs/f${String(i).padStart(2, "0")}.txt`] = `file ${i}`;
  }
  let root = "";
  await withServer({
    files,
    onLog(event) {
      // Runs before the server reads the next request: the GETs the client
      // pipelined after the listing all see the file gone.
      if (event.request === "LIST") Deno.removeSync(`${root}/docs/f10.txt`);
    },
  }, async (t) => {
    root = t.root;
    const { code, stdout, stderr } = await runClient(
      ["--port", String(t.port), "get", "-r", "docs", "-o", `${t.base}/copy`],
    );
    assert.equal(code, 1);
    assert.equal(stdout, "");
    assert.deepEqual(stderr.trim().split("\n"), [
      "ferry: get docs/f10.txt: not found",
      "ferry: get -r docs: 1 of 20 files failed",
    ]);
    for (let i = 0; i < 20; i++) {
      const name = `${t.base}/copy/f${String(i).padStart(2, "0")}.txt`;
      if (i === 10) {
        await assert.rejects(Deno.lstat(name), Deno.errors.NotFound);
        await assert.rejects(Deno.lstat(`${name}.part`), Deno.errors.NotFound);
      } else {
        assert.equal(await Deno.readTextFile(name), `file ${i}`);
      }
    }
  });
});

Deno.test("client.ts put -r uploads a tree over one connection and get A B C fetches several files", async () => {
  await withServer(
    { allowUpload: true },
    async ({ port, root, base, logs }) => {
      await makeTree(`${base}/local`);
      const put = await runClient(
        ["--port", String(port), "put", "-r", `${base}/local`, "tree"],
      );
      assert.equal(put.stderr, "");
      assert.equal(put.code, 0);
      assert.deepEqual(
        await snapshot(`${root}/tree`),
        await snapshot(`${base}/local`),
      );
      assert.equal(new Set(logs.map((event) => event.peer)).size, 1);
      await Deno.mkdir(`${base}/dl`);
      const get = await runClient([
        "--port",
        String(port),
        "get",
        "tree/top.txt",
        "tree/a/one.txt",
        "tree/nothing",
        "-o",
        `${base}/dl`,
      ]);
      assert.equal(get.code, 1);
      assert.equal(await Deno.readTextFile(`${base}/dl/top.txt`), "top\n");
      assert.equal(await Deno.readTextFile(`${base}/dl/one.txt`), "one");
      assert.match(get.stderr, /^ferry: get tree\/nothing: not found$/m);
      assert.match(get.stderr, /: 1 of 3 files failed$/m);
      assert.equal(new Set(logs.map((event) => event.peer)).size, 2);
    },
  );
});
