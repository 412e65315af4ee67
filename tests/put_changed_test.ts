/**
 * The one rule for a local file that changes while it is uploaded, single
 * and pipelined alike: that file fails with `CHANGED` before its `HASH`,
 * nothing is padded, no digest is altered, the server keeps nothing and the
 * session closes (later files of a pipelined upload fail with
 * `CONNECTION`). (Small files sent as eager `PUT`s are read whole first:
 * a change fails only that file, before anything is sent.)
 */

import assert from "node:assert/strict";
import { connect, FerryError } from "../client.ts";
import { putTree } from "../_client/tree_put.ts";
import { testBytes, withServer } from "./_util/server.ts";
import { exists } from "./_util/util.ts";

const SIZE = 3 * 1024 * 1024; // several bulk buffers: progress comes mid-file

/** How the test changes the file, synchronously, after its first chunk. */
const CHANGES: Record<string, (path: string) => void> = {
  grows: (path) =>
    Deno.writeFileSync(path, new Uint8Array(10), { append: true }),
  shrinks: (path) => Deno.truncateSync(path, 1000),
};

for (const [how, change] of Object.entries(CHANGES)) {
  Deno.test(`FerryClient put() fails with CHANGED when the local file ${how} mid-send, and the server keeps nothing`, async () => {
    await withServer({ allowUpload: true }, async (t) => {
      const local = `${t.base}/big.bin`;
      await Deno.writeFile(local, testBytes(SIZE));
      await using client = await connect({ port: t.port });
      let changed = false;
      const error = await client.put(local, "big.bin", {
        onProgress: () => {
          if (!changed) change(local);
          changed = true;
        },
      }).then(() => undefined, (error) => error);
      assert.ok(error instanceof FerryError, String(error));
      assert.equal(error.code, "CHANGED");
      assert.equal(
        error.message,
        `Local file changed while it was sent: ${local}`,
      );
      // No HASH was sent: the server saw the connection end, not a digest.
      const event = await t.waitForLog((event) =>
        event.request === "PUT" && event.path === "big.bin"
      );
      assert.notEqual(event.result, "ok");
      assert.notEqual(event.result, "INTEGRITY");
      assert.equal(await exists(`${t.root}/big.bin`), false);
      await assert.rejects(
        client.stat(""),
        (e: FerryError) => e.code === "CONNECTION",
      );
    });
  });
}

Deno.test("putTree() fails the file that changed mid-send with CHANGED, the files after it with CONNECTION, and keeps the ones before", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const local = `${t.base}/tree`;
    await Deno.mkdir(local);
    await Deno.writeTextFile(`${local}/a.txt`, "first");
    await Deno.writeFile(`${local}/b.bin`, testBytes(SIZE));
    await Deno.writeTextFile(`${local}/c.txt`, "last");
    await using client = await connect({ port: t.port });
    let changed = false;
    const report = await putTree(client, local, "up", {
      onProgress: (path) => {
        if (path === "up/b.bin" && !changed) {
          CHANGES.grows(`${local}/b.bin`);
          changed = true;
        }
      },
    });
    const codes = Object.fromEntries(
      report.outcomes.map((outcome) => [outcome.path, outcome.error?.code]),
    );
    assert.deepEqual(codes, {
      "up": undefined,
      "up/a.txt": undefined,
      "up/b.bin": "CHANGED",
      "up/c.txt": "CONNECTION",
    });
    assert.equal(report.failed, 2);
    assert.equal(await Deno.readTextFile(`${t.root}/up/a.txt`), "first");
    assert.equal(await exists(`${t.root}/up/b.bin`), false);
    assert.equal(await exists(`${t.root}/up/c.txt`), false);
    // No HASH was sent: the server saw the connection end, not a digest.
    const event = await t.waitForLog((event) => event.path === "up/b.bin");
    assert.notEqual(event.result, "ok");
    assert.notEqual(event.result, "INTEGRITY");
  });
});
