import assert from "node:assert/strict";
import { HashCache, RACY_MARGIN_MS, sameVersion } from "./hash_cache.ts";
import { serve } from "../server.ts";
import {
  RawClient,
  sha256,
  testBytes,
  type TestServer,
  withServer,
} from "../tests/_util/server.ts";
import { bytesEqual } from "../tests/_util/util.ts";

const NOW = Date.UTC(2024, 5, 1);

/** A file status as `fstat` reports it. */
function info(fields: Partial<Deno.FileInfo> = {}): Deno.FileInfo {
  return {
    isFile: true,
    isDirectory: false,
    isSymlink: false,
    size: 100,
    mtime: new Date(NOW - 60_000),
    ctime: new Date(NOW - 60_000),
    atime: null,
    birthtime: null,
    dev: 1,
    ino: 42,
    mode: 0o644,
    nlink: 1,
    uid: 0,
    gid: 0,
    rdev: 0,
    blksize: 4096,
    blocks: 1,
    isBlockDevice: false,
    isCharDevice: false,
    isFifo: false,
    isSocket: false,
    ...fields,
  } as Deno.FileInfo;
}

const DIGEST = new Uint8Array(32).fill(7);

Deno.test("HashCache keeps one entry per digest algorithm", () => {
  const cache = new HashCache(8);
  const xxh3 = new Uint8Array(16).fill(9);
  assert.equal(cache.store("/r/a", info(), "sha256", DIGEST, NOW), true);
  assert.equal(cache.lookup("/r/a", info(), "xxh3-128"), undefined);
  assert.equal(cache.store("/r/a", info(), "xxh3-128", xxh3, NOW), true);
  assert.deepEqual(cache.lookup("/r/a", info(), "xxh3-128"), xxh3);
  assert.deepEqual(cache.lookup("/r/a", info(), "sha256"), DIGEST);
});

Deno.test("HashCache finds a digest only for the same path, size, times, inode and device", () => {
  const cache = new HashCache(8);
  assert.equal(cache.store("/r/a", info(), "sha256", DIGEST, NOW), true);
  assert.deepEqual(cache.lookup("/r/a", info(), "sha256"), DIGEST);
  for (
    const other of [
      info({ size: 101 }),
      info({ mtime: new Date(NOW - 59_999) }),
      info({ ctime: new Date(NOW - 59_000) }),
      info({ ino: 43 }),
      info({ dev: 2 }),
    ]
  ) {
    assert.equal(cache.lookup("/r/a", other, "sha256"), undefined);
  }
  assert.equal(cache.lookup("/r/b", info(), "sha256"), undefined);
  assert.equal(cache.hits, 1);
  assert.equal(cache.misses, 6);
});

Deno.test("HashCache keys without an inode where the platform has none", () => {
  const cache = new HashCache(8);
  assert.equal(
    cache.store("C:\\r\\a", info({ ino: null }), "sha256", DIGEST, NOW),
    true,
  );
  assert.deepEqual(
    cache.lookup("C:\\r\\a", info({ ino: null }), "sha256"),
    DIGEST,
  );
  assert.equal(cache.lookup("C:\\r\\a", info({ ino: 5 }), "sha256"), undefined);
});

Deno.test("HashCache refuses a file changed within RACY_MARGIN_MS, except ctime for uploads", () => {
  const cache = new HashCache(8);
  const freshMtime = info({ mtime: new Date(NOW - RACY_MARGIN_MS + 1) });
  const freshCtime = info({ ctime: new Date(NOW - RACY_MARGIN_MS + 1) });
  assert.equal(cache.store("/r/a", freshMtime, "sha256", DIGEST, NOW), false);
  assert.equal(cache.store("/r/a", freshCtime, "sha256", DIGEST, NOW), false);
  assert.equal(
    cache.store("/r/a", freshMtime, "sha256", DIGEST, NOW, { upload: true }),
    false,
  );
  assert.equal(
    cache.store("/r/a", freshCtime, "sha256", DIGEST, NOW, { upload: true }),
    true,
  );
  assert.equal(
    cache.store("/r/a", info({ mtime: null }), "sha256", DIGEST, NOW),
    false,
  );
  assert.equal(cache.size, 1);
});

Deno.test("HashCache drops the least recently used entry when full", () => {
  const cache = new HashCache(2);
  cache.store("/r/a", info(), "sha256", DIGEST, NOW);
  cache.store("/r/b", info(), "sha256", DIGEST, NOW);
  assert.ok(cache.lookup("/r/a", info(), "sha256")); // a is now the most recent
  cache.store("/r/c", info(), "sha256", DIGEST, NOW);
  assert.equal(cache.size, 2);
  assert.ok(cache.lookup("/r/a", info(), "sha256"));
  assert.equal(cache.lookup("/r/b", info(), "sha256"), undefined);
  assert.ok(cache.lookup("/r/c", info(), "sha256"));
  assert.throws(() => new HashCache(0), RangeError);
});

Deno.test("sameVersion() tells a rewritten file from the one it was", () => {
  assert.equal(sameVersion(info(), info()), true);
  assert.equal(sameVersion(info(), info({ size: 1 })), false);
  assert.equal(sameVersion(info(), info({ mtime: new Date(NOW) })), false);
  assert.equal(sameVersion(info(), info({ ctime: new Date(NOW) })), false);
  assert.equal(sameVersion(info(), info({ ino: 1 })), false);
});

/** Waits until the files have been left alone long enough to be cached. */
async function untilSettled(paths: string[]): Promise<void> {
  for (const path of paths) {
    const stat = await Deno.stat(path);
    const last = Math.max(stat.mtime!.getTime(), stat.ctime?.getTime() ?? 0);
    const wait = last + RACY_MARGIN_MS + 20 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** GETs a file and returns what the server logged for it. */
async function logged(
  t: TestServer,
  path: string,
  offset = 0,
): Promise<{ cached: boolean; bytes: Uint8Array; hash: Uint8Array }> {
  const raw = await RawClient.open(t.port);
  try {
    const count = t.logs.length;
    const reply = await raw.get(path, offset);
    assert.equal(reply.trailer?.type, "hash", JSON.stringify(reply.trailer));
    const event = await t.waitForLog((event) => t.logs.indexOf(event) >= count);
    assert.equal(event.result, "ok");
    return {
      cached: event.cached === true,
      bytes: reply.bytes,
      hash: reply.trailer.type === "hash" ? reply.trailer.digest : DIGEST,
    };
  } finally {
    raw.close();
  }
}

Deno.test("serve() answers a repeated GET from its hash cache and never serves a changed file with a stale hash", async () => {
  const a = testBytes(1024 * 1024, 61);
  const b = testBytes(1024 * 1024, 62);
  await withServer({ files: { "a.bin": a, "b.bin": b } }, async (t) => {
    const hour = new Date(Date.now() - 3_600_000);
    for (const name of ["a.bin", "b.bin"]) {
      await Deno.utime(`${t.root}/${name}`, hour, hour);
    }
    await untilSettled([`${t.root}/a.bin`, `${t.root}/b.bin`]);

    const first = await logged(t, "a.bin");
    assert.equal(first.cached, false);
    assert.deepEqual(first.hash, sha256(a));
    const second = await logged(t, "a.bin");
    assert.equal(second.cached, true);
    assert.deepEqual(second.hash, sha256(a));
    assert.ok(bytesEqual(second.bytes, a));
    // A resumed GET on a hit: only the tail is read, the hash is whole.
    const tail = await logged(t, "a.bin", 1000);
    assert.equal(tail.cached, true);
    assert.ok(bytesEqual(tail.bytes, a.subarray(1000)));
    assert.deepEqual(tail.hash, sha256(a));

    // Same size, new content, new mtime: a miss, and the new hash.
    assert.equal((await logged(t, "b.bin")).cached, false);
    const b2 = testBytes(b.length, 63);
    await Deno.writeFile(`${t.root}/b.bin`, b2);
    const changed = await logged(t, "b.bin");
    assert.equal(changed.cached, false);
    assert.deepEqual(changed.hash, sha256(b2));

    // Same size, new content, mtime set back to the cached one: ctime
    // (which no program can set) has moved on, so still a miss.
    const a2 = testBytes(a.length, 64);
    await Deno.writeFile(`${t.root}/a.bin`, a2);
    await Deno.utime(`${t.root}/a.bin`, hour, hour);
    const stat = await Deno.stat(`${t.root}/a.bin`);
    assert.equal(stat.mtime?.getTime(), hour.getTime());
    const backdated = await logged(t, "a.bin");
    assert.equal(backdated.cached, false);
    assert.deepEqual(backdated.hash, sha256(a2));
    assert.ok(bytesEqual(backdated.bytes, a2));
    // Too fresh to be cached: the next GET hashes again.
    assert.equal((await logged(t, "a.bin")).cached, false);
  });
});

Deno.test("serve() caches the hash of a verified upload, unless hashCacheEntries is 0", async () => {
  const content = testBytes(256 * 1024, 65);
  const mtime = Date.now() - 3_600_000;
  for (const entries of [undefined, 0]) {
    await withServer(
      { allowUpload: true, hashCacheEntries: entries },
      async (t) => {
        const raw = await RawClient.open(t.port);
        try {
          assert.equal(
            (await raw.put("up.bin", content, { mtime }))?.type,
            "ok",
          );
        } finally {
          raw.close();
        }
        const got = await logged(t, "up.bin");
        assert.equal(got.cached, entries === undefined);
        assert.deepEqual(got.hash, sha256(content));
      },
    );
  }
});

Deno.test("serve() refuses a negative hashCacheEntries", async () => {
  await assert.rejects(
    serve({ port: 0, hashCacheEntries: -1 }),
    RangeError,
  );
});
