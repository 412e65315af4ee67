/**
 * End-to-end tests of sync (`FerryClient.syncGet`, `FerryClient.syncPut`
 * and `client.ts get -r/put -r --sync`) against a real server over real
 * sockets and real folders, including the edge cases: kind replacements,
 * time-only and content-only changes, symbolic links in the destination, a
 * hostile server with `--delete`, an interrupted sync run again, and a file
 * that changes during the sync.
 */

import assert from "node:assert/strict";
import { connect, type FerryClient } from "../client.ts";
import {
  encodeMessage,
  FrameReader,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "../protocol.ts";
import type { ServerLogEvent } from "../server.ts";
import { startCutProxy } from "./_util/cut_proxy.ts";
import { syncGet, type SyncGetClient } from "../_client/sync_get.ts";
import { syncPut, type SyncPutClient } from "../_client/sync_put.ts";
import { FerryError } from "../errors.ts";
import { testBytes, treeNames, withServer } from "./_util/server.ts";
import { CLIENT_SCRIPT, exists, runScript, withTempDir } from "./_util/util.ts";

const OLD = Date.UTC(2023, 4, 5, 6, 7, 8, 123);

/** Writes `files` under `root` (folders made), all with time `OLD`. */
async function writeTree(
  root: string,
  files: Record<string, string | Uint8Array>,
): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const path = `${root}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
    await Deno.utime(path, new Date(OLD), new Date(OLD));
  }
}

/** File bytes the server sent (GET) or received (PUT) after `from`. */
function wireBytes(
  logs: readonly ServerLogEvent[],
  request: "GET" | "PUT",
  from = 0,
): number {
  return logs.slice(from).filter((event) => event.request === request)
    .reduce((sum, event) => sum + event.bytes, 0);
}

async function withClient<T>(
  port: number,
  fn: (client: FerryClient) => Promise<T>,
): Promise<T> {
  await using client = await connect({ port });
  return await fn(client);
}

Deno.test("syncGet() copies a tree, then finds it unchanged and sends nothing", async () => {
  await withServer({}, async ({ port, root, logs }) => {
    await writeTree(root, {
      "docs/a.txt": "alpha",
      "docs/sub/b.txt": "beta",
    });
    await Deno.mkdir(`${root}/docs/empty`);
    await withTempDir(async (dir) => {
      const first = await withClient(
        port,
        (client) => client.syncGet("docs", `${dir}/docs`),
      );
      assert.equal(first.counts.created, 4);
      assert.equal(first.failed, 0);
      assert.deepEqual(await treeNames(`${dir}/docs`), [
        "a.txt",
        "empty",
        "sub",
        "sub/b.txt",
      ]);
      assert.equal(
        (await Deno.stat(`${dir}/docs/sub/b.txt`)).mtime?.getTime(),
        OLD,
      );
      const mark = logs.length;
      const second = await withClient(
        port,
        (client) => client.syncGet("docs", `${dir}/docs`),
      );
      assert.deepEqual(second.counts, {
        created: 0,
        updated: 0,
        appended: 0,
        unchanged: 4,
        deleted: 0,
        failed: 0,
      });
      assert.equal(second.bytes, 0);
      assert.equal(wireBytes(logs, "GET", mark), 0);
    });
  });
});

Deno.test("syncGet() fetches a file whose time alone changed, and with checksum finds it unchanged without fetching it", async () => {
  await withServer({}, async ({ port, root, logs }) => {
    await writeTree(root, { "d/a.txt": "same", "d/b.txt": "other" });
    await withTempDir(async (dir) => {
      await withClient(port, (client) => client.syncGet("d", `${dir}/d`));
      const later = new Date(OLD + 60_000);
      await Deno.utime(`${root}/d/a.txt`, later, later);
      let mark = logs.length;
      const checked = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`, { checksum: true }),
      );
      assert.equal(checked.counts.unchanged, 2);
      assert.equal(wireBytes(logs, "GET", mark), 0);
      // The local copy takes the source's time, so the quick check agrees.
      assert.equal(
        (await Deno.stat(`${dir}/d/a.txt`)).mtime?.getTime(),
        later.getTime(),
      );
      const quick = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`),
      );
      assert.equal(quick.counts.unchanged, 2);
      // Without checksum, a time-only change moves the file (only it).
      const latest = new Date(OLD + 120_000);
      await Deno.utime(`${root}/d/b.txt`, latest, latest);
      mark = logs.length;
      const report = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`),
      );
      assert.equal(report.counts.updated, 1);
      assert.equal(wireBytes(logs, "GET", mark), "other".length);
    });
  });
});

Deno.test("syncGet() misses a change of content with the same size and time, and checksum catches it", async () => {
  await withServer({}, async ({ port, root }) => {
    await writeTree(root, { "d/a.txt": "one!" });
    await withTempDir(async (dir) => {
      await withClient(port, (client) => client.syncGet("d", `${dir}/d`));
      await writeTree(root, { "d/a.txt": "two!" });
      const quick = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`),
      );
      assert.equal(quick.counts.unchanged, 1);
      assert.equal(await Deno.readTextFile(`${dir}/d/a.txt`), "one!");
      const checked = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`, { checksum: true }),
      );
      assert.equal(checked.counts.updated, 1);
      assert.equal(await Deno.readTextFile(`${dir}/d/a.txt`), "two!");
    });
  });
});

Deno.test("syncGet() replaces a file by a folder and a folder by a file", async () => {
  await withServer({}, async ({ port, root }) => {
    await writeTree(root, { "d/x/inner.txt": "in", "d/y": "now a file" });
    await withTempDir(async (dir) => {
      await writeTree(dir, {
        "d/x": "was a file",
        "d/y/old.txt": "old",
        "d/y/deep/z.txt": "z",
      });
      const report = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`),
      );
      assert.equal(report.failed, 0, JSON.stringify(report.records));
      assert.deepEqual(await treeNames(`${dir}/d`), ["x", "x/inner.txt", "y"]);
      assert.equal(await Deno.readTextFile(`${dir}/d/y`), "now a file");
    });
  });
});

Deno.test("syncPut() replaces a file by a folder and a folder by a file on the server", async () => {
  await withServer(
    { allowUpload: true, allowDelete: true },
    async ({ port, root }) => {
      await writeTree(root, {
        "up/x": "was a file",
        "up/y/old.txt": "old",
      });
      await withTempDir(async (dir) => {
        await writeTree(dir, { "src/x/inner.txt": "in", "src/y": "a file" });
        const report = await withClient(
          port,
          (client) => client.syncPut(`${dir}/src`, "up"),
        );
        assert.equal(report.failed, 0, JSON.stringify(report.records));
        assert.deepEqual(await treeNames(`${root}/up`), [
          "x",
          "x/inner.txt",
          "y",
        ]);
      });
    },
  );
});

Deno.test("syncGet() never writes through, follows or replaces a symbolic link in the destination", async () => {
  await withServer({}, async ({ port, root }) => {
    await writeTree(root, { "d/linked/a.txt": "a", "d/file.txt": "f" });
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/d`, { recursive: true });
      await Deno.mkdir(`${dir}/outside`);
      await Deno.writeTextFile(`${dir}/outside/keep.txt`, "keep");
      await Deno.writeTextFile(`${dir}/outside/target.txt`, "target");
      await Deno.symlink(`${dir}/outside`, `${dir}/d/linked`);
      await Deno.symlink(`${dir}/outside/target.txt`, `${dir}/d/file.txt`);
      await Deno.symlink(`${dir}/outside`, `${dir}/d/extra-link`);
      const report = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`, { delete: true }),
      );
      const failed = report.records.filter((record) => record.error);
      assert.deepEqual(failed.map((record) => record.name).sort(), [
        "d/file.txt",
        "d/linked",
        "d/linked/a.txt",
      ]);
      assert.ok(failed.every((record) => record.error!.code === "FORBIDDEN"));
      // Nothing outside was written or removed; a failure stops deletes.
      assert.deepEqual(await treeNames(`${dir}/outside`), [
        "keep.txt",
        "target.txt",
      ]);
      assert.equal(
        await Deno.readTextFile(`${dir}/outside/target.txt`),
        "target",
      );
      assert.ok((await Deno.lstat(`${dir}/d/extra-link`)).isSymlink);
      assert.match(report.deletesSkipped ?? "", /failed/);
    });
  });
});

Deno.test("syncGet() with delete removes a link the source lacks, never its target", async () => {
  await withServer({}, async ({ port, root }) => {
    await writeTree(root, { "d/a.txt": "a" });
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/d`, { recursive: true });
      await Deno.mkdir(`${dir}/outside`);
      await Deno.writeTextFile(`${dir}/outside/keep.txt`, "keep");
      await Deno.symlink(`${dir}/outside`, `${dir}/d/link`);
      await Deno.mkdir(`${dir}/d/gone/deep`, { recursive: true });
      await Deno.symlink(`${dir}/outside`, `${dir}/d/gone/deep/inner-link`);
      const report = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`, { delete: true }),
      );
      assert.equal(report.failed, 0);
      assert.equal(report.counts.deleted, 2);
      assert.deepEqual(await treeNames(`${dir}/d`), ["a.txt"]);
      assert.deepEqual(await treeNames(`${dir}/outside`), ["keep.txt"]);
    });
  });
});

/**
 * A hostile server: answers the handshake, `STAT` of anything with a
 * folder, and `LIST` with `names` (as files of 1 byte), refuses the rest.
 */
async function withHostileServer(
  names: string[],
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      const reader = new FrameReader(conn);
      const reply = (message: Message) =>
        writeAll(conn, encodeMessage(message));
      try {
        while (true) {
          const message = await reader.readMessage();
          if (message === null) break;
          if (message.type === "hello") {
            await reply({
              type: "hello",
              minVersion: PROTOCOL_VERSION,
              maxVersion: PROTOCOL_VERSION,
              flags: 0,
              nonce: new Uint8Array(32),
            });
          } else if (message.type === "digests") {
            await reply({ type: "digests", algorithms: ["xxh3-128"] });
          } else if (message.type === "stat") {
            await reply({
              type: "info",
              entry: { name: "", kind: "dir", size: 0, mtime: OLD },
            });
          } else if (message.type === "list") {
            await reply({
              type: "entries",
              entries: names.map((name) => ({
                name,
                kind: "file" as const,
                size: 1,
                mtime: OLD,
              })),
            });
            await reply({ type: "end", count: names.length });
          } else {
            await reply({ type: "error", code: "NOT_FOUND", message: "no" });
          }
        }
      } catch {
        // the client left
      } finally {
        conn.close();
      }
    }
  })();
  try {
    await fn((listener.addr as Deno.NetAddr).port);
  } finally {
    listener.close();
    await serving;
  }
}

Deno.test("syncGet() with delete, against a hostile server's names, removes and writes nothing outside the destination", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/dest`);
    await Deno.writeTextFile(`${dir}/dest/mine.txt`, "mine");
    await Deno.writeTextFile(`${dir}/victim.txt`, "victim");
    await withHostileServer(
      [
        "../victim.txt",
        `${dir}/victim.txt`,
        "a/../../victim.txt",
        "a\\..\\..\\victim.txt",
        "C:/victim.txt",
        "\x00x",
        "",
      ],
      async (port) => {
        const report = await withClient(
          port,
          (client) => client.syncGet("d", `${dir}/dest`, { delete: true }),
        );
        assert.equal(report.failed, 7);
        assert.ok(
          report.records.every((record) => record.error?.code === "FORBIDDEN"),
        );
        assert.match(report.deletesSkipped ?? "", /7 entries failed/);
      },
    );
    assert.equal(await Deno.readTextFile(`${dir}/victim.txt`), "victim");
    assert.deepEqual(await treeNames(dir), [
      "dest",
      "dest/mine.txt",
      "victim.txt",
    ]);
  });
});

Deno.test("syncGet() run again after a cut resumes the large file and counts no file twice", async () => {
  const big = testBytes(3 * 1024 * 1024, 11);
  await withServer({}, async ({ port, root, logs }) => {
    await writeTree(root, {
      "d/a.txt": "a",
      "d/b.txt": "b",
      "d/big.bin": big,
    });
    await withTempDir(async (dir) => {
      // The proxy cuts the first connection in the middle of the big file.
      let cuts = 0;
      await using proxy = startCutProxy(
        port,
        "toClient",
        () => cuts++ === 0 ? 1024 * 1024 : Infinity,
      );
      const first = await withClient(
        proxy.port,
        (client) => client.syncGet("d", `${dir}/d`),
      );
      assert.equal(first.counts.created, 2);
      assert.deepEqual(
        first.records.filter((record) => record.error).map((record) =>
          record.name
        ),
        ["d/big.bin"],
      );
      assert.ok(await exists(`${dir}/d/big.bin.part`));
      const mark = logs.length;
      const second = await withClient(
        port,
        (client) => client.syncGet("d", `${dir}/d`),
      );
      assert.equal(second.failed, 0);
      assert.equal(second.counts.created, 1);
      assert.equal(second.counts.unchanged, 2);
      assert.deepEqual(await Deno.readFile(`${dir}/d/big.bin`), big);
      // The big file continued from its part: less than it crossed again.
      assert.ok(wireBytes(logs, "GET", mark) < big.length);
      assert.ok(!await exists(`${dir}/d/big.bin.part`));
      assert.ok(!await exists(`${dir}/d/big.bin.part.ferry`));
    });
  });
});

Deno.test("syncGet() fetches a file that changed on the source during the sync once more, and reports one that keeps changing", async () => {
  await withServer({}, async ({ port, root }) => {
    await writeTree(root, { "d/a.txt": "first", "d/b.txt": "b" });
    await withTempDir(async (dir) => {
      await using client = await connect({ port });
      let changes = 0;
      // The client as the sync engine sees it, with a source that changes
      // while its file is on the way (the first `limit` times).
      const flaky = (limit: number): SyncGetClient => ({
        stat: (path) => client.stat(path),
        list: (path, options) => client.list(path, options),
        get: (path, destination, options) =>
          client.get(path, destination, options),
        sum: (path, options) => client.sum(path, options),
        server: client.server,
        digest: client.digest,
        async getMany(items, options) {
          const outcomes = await client.getMany(items, options);
          if (changes >= limit) return outcomes;
          changes++;
          await Deno.writeTextFile(`${root}/d/a.txt`, `changed ${changes}`);
          return outcomes.map((outcome) =>
            outcome.path === "d/a.txt"
              ? {
                path: outcome.path,
                kind: outcome.kind,
                error: new FerryError("CHANGED", "File changed while sent"),
              }
              : outcome
          );
        },
      });
      const retried = await syncGet(flaky(1), "d", `${dir}/d`);
      assert.equal(retried.failed, 0, JSON.stringify(retried.records));
      assert.equal(await Deno.readTextFile(`${dir}/d/a.txt`), "changed 1");
      await Deno.writeTextFile(`${root}/d/a.txt`, "again!!!!!");
      changes = 0;
      const reported = await syncGet(flaky(2), "d", `${dir}/d`, {
        delete: true,
      });
      const failure = reported.records.find((record) => record.error);
      assert.ok(failure?.error instanceof FerryError);
      assert.equal(failure?.error?.code, "CHANGED");
      assert.equal(reported.failed, 1);
    });
  });
});

Deno.test("syncPut() reports a local file that changed while it was sent, and then deletes nothing", async () => {
  await withServer(
    { allowUpload: true, allowDelete: true },
    async ({ port, root }) => {
      await writeTree(root, { "up/extra.txt": "x" });
      await withTempDir(async (dir) => {
        await writeTree(dir, { "src/a.txt": "a", "src/b.txt": "b" });
        await using client = await connect({ port });
        // The engine as it sees the client, with a.txt changing on the way.
        const changing: SyncPutClient = {
          stat: (path) => client.stat(path),
          list: (path, options) => client.list(path, options),
          put: (local, remote, options) => client.put(local, remote, options),
          sum: (path, options) => client.sum(path, options),
          delete: (path, options) => client.delete(path, options),
          digest: client.digest,
          async putMany(items, options) {
            const outcomes = await client.putMany(items, options);
            return outcomes.map((outcome) =>
              outcome.path === "up/a.txt"
                ? {
                  path: outcome.path,
                  kind: outcome.kind,
                  error: new FerryError("CHANGED", "Local file changed"),
                }
                : outcome
            );
          },
        };
        const report = await syncPut(changing, `${dir}/src`, "up", {
          delete: true,
        });
        assert.deepEqual(
          report.records.filter((record) => record.error).map((record) => [
            record.name,
            record.error!.code,
          ]),
          [["up/a.txt", "CHANGED"]],
        );
        assert.match(report.deletesSkipped ?? "", /1 entries failed/);
        assert.ok(await exists(`${root}/up/extra.txt`));
      });
    },
  );
});

Deno.test("syncGet() sends only the new bytes of a grown file, and syncPut() likewise", async () => {
  const old = testBytes(300_000, 21);
  const grown = new Uint8Array(old.length + 40_000);
  grown.set(old);
  grown.set(testBytes(40_000, 22), old.length);
  await withServer(
    { allowUpload: true },
    async ({ port, root, logs }) => {
      await writeTree(root, { "d/log.bin": old });
      await withTempDir(async (dir) => {
        await withClient(port, (client) => client.syncGet("d", `${dir}/d`));
        await writeTree(root, { "d/log.bin": grown });
        let mark = logs.length;
        const got = await withClient(
          port,
          (client) => client.syncGet("d", `${dir}/d`),
        );
        assert.equal(got.counts.appended, 1, JSON.stringify(got.records));
        assert.equal(wireBytes(logs, "GET", mark), 40_000);
        assert.deepEqual(await Deno.readFile(`${dir}/d/log.bin`), grown);
        await writeTree(root, { "up/log.bin": old });
        await writeTree(dir, { "d/log.bin": grown });
        mark = logs.length;
        const put = await withClient(
          port,
          (client) => client.syncPut(`${dir}/d`, "up"),
        );
        assert.equal(put.counts.appended, 1, JSON.stringify(put.records));
        assert.equal(wireBytes(logs, "PUT", mark), 40_000);
        assert.deepEqual(await Deno.readFile(`${root}/up/log.bin`), grown);
      });
    },
  );
});

Deno.test("syncPut() with delete removes what the source lacks only on a server that allows deletes", async () => {
  for (const allowDelete of [false, true]) {
    await withServer(
      { allowUpload: true, allowDelete },
      async ({ port, root }) => {
        await writeTree(root, { "up/keep.txt": "k", "up/old/x.txt": "x" });
        await withTempDir(async (dir) => {
          await writeTree(dir, { "src/keep.txt": "k" });
          const report = await withClient(
            port,
            (client) => client.syncPut(`${dir}/src`, "up", { delete: true }),
          );
          if (allowDelete) {
            assert.equal(report.failed, 0);
            assert.deepEqual(await treeNames(`${root}/up`), ["keep.txt"]);
          } else {
            assert.equal(report.failed, 1);
            assert.equal(report.records.at(-1)?.error?.code, "FORBIDDEN");
            assert.deepEqual(await treeNames(`${root}/up`), [
              "keep.txt",
              "old",
              "old/x.txt",
            ]);
          }
        });
      },
    );
  }
});

Deno.test("client.ts get -r --sync --dry-run --delete prints the plan and changes nothing; --sync --json prints sync records", async () => {
  await withServer({}, async ({ port, root }) => {
    await writeTree(root, { "d/a.txt": "a", "d/new.txt": "new" });
    await withTempDir(async (dir) => {
      await writeTree(dir, { "d/a.txt": "AA", "d/extra.txt": "x" });
      const before = await treeNames(`${dir}/d`);
      const args = ["--port", String(port), "get", "-r", "d", "-o", `${dir}/d`];
      const dry = await runScript(CLIENT_SCRIPT, [
        ...args,
        "--sync",
        "--delete",
        "--dry-run",
      ]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.deepEqual(dry.stdout.trim().split("\n"), [
        "update d/a.txt",
        "create d/new.txt",
        "delete d/extra.txt",
        `${dir}/d: 1 updated, 1 created, 0 unchanged, 1 deleted (dry run: nothing changed)`,
      ]);
      assert.deepEqual(await treeNames(`${dir}/d`), before);
      assert.equal(await Deno.readTextFile(`${dir}/d/a.txt`), "AA");
      const json = await runScript(CLIENT_SCRIPT, [
        ...args,
        "--sync",
        "--json",
      ]);
      assert.equal(json.code, 0, json.stderr);
      const records = json.stdout.trim().split("\n").map((line) =>
        JSON.parse(line)
      );
      assert.deepEqual(
        records.map((record) => [record.name, record.status, record.sent]),
        [["d/a.txt", "updated", 1], ["d/new.txt", "created", 3]],
      );
      const usage = await runScript(CLIENT_SCRIPT, [...args, "--delete"]);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /--delete needs --sync/);
    });
  });
});
