/**
 * The bound on resumable parts that cut uploads leave on the server: one
 * per target path, and `maxPartBytes` for all of them, oldest out first.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PART_NAME } from "../_server/upload_part.ts";
import {
  RawClient,
  testBytes,
  type TestServer,
  withServer,
} from "./_util/server.ts";

const KIB = 1024;

/** Starts a resumable upload, sends `sent` bytes of it, then cuts it. */
async function cutUpload(
  t: TestServer,
  path: string,
  size: number,
  sent: number,
  mtime: number,
): Promise<void> {
  const from = t.logs.length;
  const raw = await RawClient.open(t.port);
  try {
    await raw.send({
      type: "put",
      path,
      size,
      overwrite: false,
      resume: true,
      mtime,
    });
    assert.equal((await raw.expect("ready")).offset, 0);
    await raw.sendBytes(testBytes(sent));
  } finally {
    raw.close();
  }
  // The request's own log line comes once its part is kept (or dropped).
  await t.waitForLog((event) =>
    event.request === "PUT" && event.path === path &&
    event.result !== "PART_EVICTED" && t.logs.indexOf(event) >= from
  );
}

/** Bytes and count of the upload parts in `folder`. */
async function partsIn(
  folder: string,
): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const entry of Deno.readDir(folder)) {
    if (!PART_NAME.test(entry.name)) continue;
    count++;
    bytes += (await Deno.lstat(`${folder}/${entry.name}`)).size;
  }
  return { count, bytes };
}

Deno.test("serve() keeps at most maxPartBytes of cut uploads' parts, oldest evicted first with a log line", async () => {
  await withServer(
    { allowUpload: true, maxUploadBytes: 256 * KIB, maxPartBytes: 300 * KIB },
    async (t) => {
      for (let i = 0; i < 10; i++) {
        await cutUpload(
          t,
          `f${i}.bin`,
          256 * KIB,
          100 * KIB,
          Date.UTC(2020, 0, 1),
        );
      }
      const parts = await partsIn(t.root);
      assert.ok(parts.bytes <= 300 * KIB, `${parts.bytes} bytes of parts kept`);
      assert.equal(parts.count, 3);
      const evicted = t.logs.filter((event) => event.result === "PART_EVICTED");
      assert.deepEqual(
        evicted.map((event) => event.path),
        ["f0.bin", "f1.bin", "f2.bin", "f3.bin", "f4.bin", "f5.bin", "f6.bin"],
      );
      assert.equal(evicted[0].bytes, 100 * KIB);
    },
  );
});

Deno.test("serve() keeps one part per target: a new resumable upload of the same path drops the older part", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    await cutUpload(t, "a.bin", 200 * KIB, 50 * KIB, Date.UTC(2020, 0, 1));
    await cutUpload(t, "a.bin", 300 * KIB, 60 * KIB, Date.UTC(2020, 0, 2));
    const parts = await partsIn(t.root);
    assert.deepEqual(parts, { count: 1, bytes: 60 * KIB });
  });
});
