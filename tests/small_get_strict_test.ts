/**
 * The small `GET`s' strict-mode fast path (`_server/small_get.ts`,
 * `sendSmallHeld`: a folder held open across requests, `openat` with
 * `O_NOFOLLOW`, the kernel's name of the file as the proof) and the reply
 * batching of pipelined requests (`_server/reply_batch.ts`). That path
 * needs `/proc/self/fd`, which Deno grants a program only with `-A`, so the
 * server runs as a child process here (`server.ts` under `deno run -A`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { strictLibc } from "../_server/dir_handle.ts";
import { RawClient } from "./_util/server.ts";
import { digestOf } from "../_common/digest.ts";
import { nativeXxh3 } from "../_common/native_xxh3.ts";
import {
  concat,
  SERVER_SCRIPT,
  spawnScript,
  withTempDir,
} from "./_util/util.ts";
import {
  type DigestAlgorithm,
  encodeMessage,
  type Message,
  PROTOCOL_VERSION,
} from "../protocol.ts";

const LINUX_STRICT = Deno.build.os === "linux" && strictLibc() !== undefined;
const IGNORED = " (ignored: needs Linux and --allow-ffi)";
// The XXH3 runs take the unawaited path only with native XXH3: without
// libxxhash they test the awaited one twice, and say so.
const FAST_PATH_NOTE = nativeXxh3() === undefined
  ? " (XXH3 fast path not run: libxxhash is missing)"
  : "";

/**
 * A test of the strict path (ignored, with the reason in its name, where
 * it cannot run), with a temporary folder and `root` inside it.
 */
function strictTest(
  name: string,
  fn: (root: string, dir: string) => Promise<void>,
): void {
  Deno.test({
    name: `${name}${LINUX_STRICT ? FAST_PATH_NOTE : IGNORED}`,
    ignore: !LINUX_STRICT,
    async fn() {
      await withTempDir((dir) => fn(`${dir}/root`, dir));
    },
  });
}

/**
 * Runs `server.ts -A` on `root` (port 0) while `fn` runs; returns what it
 * printed on stderr (its log, with `log`).
 */
async function withChildServer(
  root: string,
  fn: (port: number) => Promise<void>,
  log = false,
  extra: string[] = [],
): Promise<string> {
  const server = await spawnScript(SERVER_SCRIPT, [
    "--root",
    root,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    ...(log ? [] : ["--quiet"]),
    ...extra,
  ]);
  try {
    const port = Number(/tcp:\/\/127\.0\.0\.1:(\d+)/.exec(server.head)?.[1]);
    assert.ok(port > 0, server.head);
    await fn(port);
  } finally {
    server.child.kill("SIGTERM");
  }
  return (await server.finish()).stderr;
}

/**
 * The digests a session may agree: SHA-256 takes the path that awaits
 * each step, XXH3 (native) the one that answers a run of buffered `GET`s
 * without an await (`_server/small_get_run.ts`).
 */
const DIGESTS = ["sha256", "xxh3-128"] as const;

/** A client that has agreed `digest` with the server. */
async function openClient(
  port: number,
  digest: DigestAlgorithm,
  record = false,
): Promise<RawClient> {
  const client = await RawClient.connect(port, record);
  await client.hello(PROTOCOL_VERSION, PROTOCOL_VERSION, [digest]);
  return client;
}

/** One reply to a `GET`: the bytes, or the error code. */
async function reply(
  client: RawClient,
  digest: DigestAlgorithm,
): Promise<string> {
  const message: Message | null = await client.next();
  if (message?.type === "error") return `error ${message.code}`;
  assert.equal(message?.type, "data", JSON.stringify(message));
  if (message?.type !== "data") throw new Error("unreachable");
  const bytes = await client.readRaw(message.size);
  const hash = await client.expect("hash");
  assert.deepEqual(new Uint8Array(hash.digest), await digestOf(digest, bytes));
  return new TextDecoder().decode(bytes);
}

/**
 * Sends `GET`s for `paths` in one write (the server finds them all
 * buffered), then reads their replies in order.
 */
async function pipelined(
  client: RawClient,
  paths: string[],
  digest: DigestAlgorithm,
): Promise<string[]> {
  await client.sendBytes(
    concat(
      paths.map((path) => encodeMessage({ type: "get", path, offset: 0 })),
    ),
  );
  const replies: string[] = [];
  for (const _ of paths) replies.push(await reply(client, digest));
  return replies;
}

strictTest(
  "server.ts answers pipelined small, large, missing and linked GETs in order",
  async (root) => {
    await Deno.mkdir(`${root}/a/b`, { recursive: true });
    await Deno.mkdir(`${root}/c`);
    const big = "x".repeat(200_000); // past the small path and the batch
    const files: Record<string, string> = {
      "a/b/1.txt": "one",
      "a/b/2.txt": "two",
      "a/3.txt": "three",
      "c/big.txt": big,
      "c/4.txt": "four",
      "a/.ferry-0123456789abcdef.part": "an upload's temporary",
    };
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${root}/${name}`, text);
    }
    // Links inside the root are served through them, as by name.
    await Deno.symlink(`${root}/a/b`, `${root}/linked`);
    await Deno.symlink(`${root}/c/4.txt`, `${root}/a/b/4.link`);
    await withChildServer(root, async (port) => {
      for (const digest of DIGESTS) {
        const client = await openClient(port, digest);
        try {
          const paths = [
            "a/b/1.txt",
            "a/b/missing.txt",
            "a/b/2.txt",
            "c/big.txt",
            "a/b/1.txt",
            "linked/2.txt",
            "a/b/4.link",
            "a/b",
            "a/3.txt",
            "a/.ferry-0123456789abcdef.part",
            "c/4.txt",
          ];
          const expected = [
            "one",
            "error NOT_FOUND",
            "two",
            big,
            "one",
            "two",
            "four",
            "error FORBIDDEN",
            "three",
            "error FORBIDDEN",
            "four",
          ];
          for (let round = 0; round < 3; round++) {
            assert.deepEqual(
              await pipelined(client, paths, digest),
              expected,
              digest,
            );
          }
        } finally {
          client.close();
        }
      }
    });
  },
);

strictTest(
  "server.ts serves the file now at the path, not one in a folder renamed away since the last GET",
  async (root) => {
    await Deno.mkdir(`${root}/d`, { recursive: true });
    await Deno.writeTextFile(`${root}/d/f.txt`, "old");
    // Larger than what the sockets buffer: the server is still sending
    // it when the folder is replaced, with the third GET read already.
    const big = new Uint8Array(32 * 1024 * 1024).fill(7);
    await Deno.writeFile(`${root}/d/big.bin`, big);
    await withChildServer(root, async (port) => {
      for (const digest of DIGESTS) {
        await Deno.remove(`${root}/d.old`, { recursive: true }).catch(
          () => {},
        );
        await Deno.writeTextFile(`${root}/d/f.txt`, "old");
        await Deno.writeFile(`${root}/d/big.bin`, big);
        const client = await openClient(port, digest);
        try {
          const get = (path: string) =>
            encodeMessage({ type: "get", path, offset: 0 });
          await client.sendBytes(
            concat([get("d/f.txt"), get("d/big.bin"), get("d/f.txt")]),
          );
          assert.equal(await reply(client, digest), "old");
          await Deno.rename(`${root}/d`, `${root}/d.old`);
          await Deno.mkdir(`${root}/d`);
          await Deno.writeTextFile(`${root}/d/f.txt`, "new");
          assert.equal((await reply(client, digest)).length, big.length);
          assert.equal(await reply(client, digest), "new", digest);
        } finally {
          client.close();
        }
      }
    });
  },
);

strictTest(
  "server.ts never sends a file from outside the root to pipelined GETs while a folder is swapped for a link",
  async (root, dir) => {
    const canary = `canary-${crypto.randomUUID()}`;
    await Deno.mkdir(`${root}/d`, { recursive: true });
    await Deno.mkdir(`${dir}/outside`);
    await Deno.writeTextFile(`${root}/d/f.txt`, "inside");
    await Deno.writeTextFile(`${dir}/outside/f.txt`, canary);
    await Deno.symlink(`${dir}/outside`, `${root}/d.evil`);
    await withChildServer(root, async (port) => {
      let done = false;
      let swaps = 0;
      const swapper = (async () => {
        while (!done) {
          await Deno.rename(`${root}/d`, `${root}/d.real`);
          await Deno.rename(`${root}/d.evil`, `${root}/d`);
          await Deno.rename(`${root}/d`, `${root}/d.evil`);
          await Deno.rename(`${root}/d.real`, `${root}/d`);
          swaps++;
        }
      })();
      // Per digest: each takes its own path (see DIGESTS).
      const refused = new Map<string, number>();
      const seen: string[] = [];
      const clients: RawClient[] = [];
      try {
        for (const digest of DIGESTS) {
          const client = await openClient(port, digest, true);
          clients.push(client);
          refused.set(digest, 0);
          // At least 50 runs, and on until the race has refused one (a
          // bounded number of runs: the swapper never stops for long).
          for (
            let i = 0;
            i < 50 || (refused.get(digest) === 0 && i < 500);
            i++
          ) {
            const paths = new Array(8).fill("d/f.txt");
            for (const outcome of await pipelined(client, paths, digest)) {
              assert.notEqual(outcome, canary, "canary sent");
              assert.ok(
                ["inside", "error NOT_FOUND", "error FORBIDDEN"].includes(
                  outcome,
                ),
                outcome,
              );
              if (!seen.includes(outcome)) seen.push(outcome);
              if (outcome === "error FORBIDDEN") {
                refused.set(digest, refused.get(digest)! + 1);
              }
            }
          }
        }
      } finally {
        done = true;
        await swapper;
        for (const client of clients) client.close();
      }
      for (const client of clients) {
        assert.ok(!client.transcript.includes(canary), "canary leaked");
      }
      assert.ok(swaps > 0);
      // The race really ran, on each path: some requests met the link and
      // were refused.
      for (const digest of DIGESTS) {
        assert.ok(refused.get(digest)! > 0, `${digest}: ${seen.join()}`);
      }
    });
  },
);

strictTest(
  "server.ts logs every GET of a pipelined run of small files, in order",
  async (root) => {
    await Deno.mkdir(`${root}/a`, { recursive: true });
    const paths: string[] = [];
    for (let i = 0; i < 20; i++) {
      await Deno.writeTextFile(`${root}/a/${i}.txt`, `file ${i}`);
      paths.push(`a/${i}.txt`);
    }
    const log = await withChildServer(root, async (port) => {
      const client = await openClient(port, "xxh3-128");
      try {
        const replies = await pipelined(client, paths, "xxh3-128");
        assert.deepEqual(replies, paths.map((_, i) => `file ${i}`));
      } finally {
        client.close();
      }
    }, true);
    const gets = log.split("\n").filter((line) => line.includes("GET"));
    assert.equal(gets.length, paths.length, log);
    for (const [i, path] of paths.entries()) {
      assert.ok(gets[i].includes(path), gets[i]);
    }
  },
);

strictTest(
  "server.ts answers GETs pipelined after eager PUTs of the same files with the new bytes",
  async (root) => {
    await Deno.mkdir(`${root}/a`, { recursive: true });
    const names = ["1.txt", "2.txt", "3.txt"].map((name) => `a/${name}`);
    for (const name of names) {
      await Deno.writeTextFile(`${root}/${name}`, "old");
    }
    await withChildServer(
      root,
      async (port) => {
        for (const digest of DIGESTS) {
          const client = await openClient(port, digest);
          try {
            // Every PUT, then every GET, in one write: the server finds them
            // all buffered, and must place the uploads before it reads.
            const frames: Uint8Array[] = [];
            for (const name of names) {
              const bytes = new TextEncoder().encode(`new ${digest} ${name}`);
              frames.push(
                encodeMessage({
                  type: "put",
                  path: name,
                  size: bytes.length,
                  overwrite: true,
                  resume: false,
                  eager: true,
                }),
                bytes,
                encodeMessage({
                  type: "hash",
                  digest: await digestOf(digest, bytes),
                }),
              );
            }
            for (const name of names) {
              frames.push(
                encodeMessage({ type: "get", path: name, offset: 0 }),
              );
            }
            await client.sendBytes(concat(frames));
            for (const _ of names) {
              assert.equal((await client.next())?.type, "ok");
            }
            for (const name of names) {
              assert.equal(
                await reply(client, digest),
                `new ${digest} ${name}`,
              );
            }
          } finally {
            client.close();
          }
        }
      },
      false,
      ["--allow-upload"],
    );
  },
);
