/**
 * `put -r` with libc holds a folder descriptor per level of the walk
 * (`_client/local_walk.ts`): a tree upload that ends early closes them.
 */

import assert from "node:assert/strict";
import { connect } from "../client.ts";
import { withServer } from "./_util/server.ts";
import { putTree } from "../_client/tree_put.ts";
import { nativeRead } from "../_client/native_read.ts";

const held = nativeRead()?.readsFolders === true;

/** How many open descriptors (below 1024) are one of `folders`. */
function openOn(folders: string[]): number {
  const native = nativeRead()!;
  const wanted = new Set(folders.map((folder) => {
    const info = Deno.statSync(folder);
    return `${info.dev}:${info.ino}`;
  }));
  let count = 0;
  for (let fd = 0; fd < 1024; fd++) {
    const info = native.statFd(fd);
    if (info !== undefined && wanted.has(`${info.dev}:${info.ino}`)) count++;
  }
  return count;
}

Deno.test({
  name:
    `putTree() whose onFile throws mid-walk leaves no folder descriptor open${
      held ? "" : " (ignored: needs libc with getdents64 and --allow-ffi)"
    }`,
  ignore: !held,
  fn: async () => {
    await withServer({ allowUpload: true }, async ({ port, base }) => {
      const local = `${base}/local`;
      await Deno.mkdir(`${local}/a/b/c`, { recursive: true });
      for (let i = 0; i < 400; i++) {
        await Deno.writeTextFile(`${local}/a/b/c/${i}.txt`, `${i}`);
      }
      await using client = await connect({ port });
      const folders = [local, `${local}/a`, `${local}/a/b`, `${local}/a/b/c`];
      let outcomes = 0;
      await assert.rejects(
        () =>
          putTree(client, local, "up", {
            onFile: () => {
              if (++outcomes >= 5) throw new Error("stop");
            },
          }),
        /stop/,
      );
      assert.equal(openOn(folders), 0);
    });
  },
});
