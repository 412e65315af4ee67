import assert from "node:assert/strict";
import posix from "node:path/posix";
import { localPath } from "./local_path.ts";

const PATHS = [
  "",
  ".",
  "./",
  "..",
  "../",
  "/",
  "//",
  "a",
  "a/",
  "a//b",
  "a/./b",
  "a/../b",
  "a/..",
  "a/../",
  "a/../..",
  "../a/../../b",
  "/..",
  "/../a",
  "/a/b/../../..",
  "/a/./b/",
  "./a/b/c.txt",
  "ünï/日本/../ß.txt",
  "a b/ c /",
];

Deno.test("localPath.join() and resolve() give what node:path's POSIX functions give", () => {
  if (Deno.build.os === "windows") return; // node:path itself there
  for (const a of PATHS) {
    assert.equal(localPath.resolve(a), posix.resolve(a), `resolve(${a})`);
    assert.equal(localPath.join(a), posix.join(a), `join(${a})`);
    for (const b of PATHS) {
      assert.equal(localPath.join(a, b), posix.join(a, b), `join(${a}, ${b})`);
      assert.equal(
        localPath.resolve(a, b),
        posix.resolve(a, b),
        `resolve(${a}, ${b})`,
      );
    }
  }
  assert.equal(localPath.join("/dest", "a", "b.txt"), "/dest/a/b.txt");
  assert.equal(localPath.sep, posix.sep);
});
