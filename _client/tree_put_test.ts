import assert from "node:assert/strict";
import { type PutManyItem, putTree, type TreePutClient } from "./tree_put.ts";
import type { FileOutcome } from "./session_io.ts";

Deno.test("putTree() gives putMany its folders, then files as the walk reaches them, then the folders' times, and the totals once the walk has ended", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.mkdir(`${root}/a/b`, { recursive: true });
    await Deno.writeTextFile(`${root}/a/b/x.txt`, "xx");
    await Deno.writeTextFile(`${root}/y.txt`, "yyy");
    const events: string[] = [];
    const client: TreePutClient = {
      putMany(items: Iterable<PutManyItem>): Promise<FileOutcome[]> {
        const outcomes: FileOutcome[] = [];
        for (const item of items) {
          const time = item.kind === "dir" && item.mtime !== undefined
            ? " (time)"
            : "";
          events.push(`${item.kind} ${item.remote}${time}`);
          outcomes.push({ path: item.remote, kind: item.kind });
        }
        return Promise.resolve(outcomes);
      },
    };
    const report = await putTree(client, root, "up", {
      onListed: (files, bytes) => events.push(`listed ${files} ${bytes}`),
    });
    assert.deepEqual(events, [
      "dir up",
      "dir up/a",
      "dir up/a/b",
      "file up/a/b/x.txt",
      "file up/y.txt",
      "listed 2 5",
      "dir up/a/b (time)",
      "dir up/a (time)",
      "dir up (time)",
    ]);
    assert.equal(report.total, 5);
    assert.equal(report.failed, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("putTree() fails with LOCAL before anything is sent when the local folder is missing", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    let called = false;
    const client: TreePutClient = {
      putMany(): Promise<FileOutcome[]> {
        called = true;
        return Promise.resolve([]);
      },
    };
    await assert.rejects(
      () => putTree(client, `${root}/missing`, "up"),
      (error: Error & { code?: string }) => error.code === "LOCAL",
    );
    assert.equal(called, false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
