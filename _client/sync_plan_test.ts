import assert from "node:assert/strict";
import {
  APPEND_MIN_BYTES,
  planSync,
  sameTime,
  type SyncEntry,
} from "./sync_plan.ts";

const T = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function file(name: string, size = 10, mtime = T): SyncEntry {
  return { name, kind: "file", size, mtime };
}

function dir(name: string, mtime = T): SyncEntry {
  return { name, kind: "dir", size: 0, mtime };
}

function actions(
  source: SyncEntry[],
  dest: SyncEntry[],
  options = {},
): Record<string, string> {
  const plan = planSync(source, dest, options);
  return Object.fromEntries([
    ...plan.items.map((item) => [item.name, item.action]),
    ...plan.deletes.map((item) => [item.name, item.action]),
  ]);
}

Deno.test("planSync() leaves files of the same size and time alone and creates the missing ones", () => {
  assert.deepEqual(
    actions(
      [dir("d"), file("d/a"), file("d/b"), dir("e")],
      [dir("d"), file("d/a")],
    ),
    { d: "unchanged", "d/a": "unchanged", "d/b": "create", e: "create" },
  );
});

Deno.test("planSync() updates a file whose time alone changed, and one whose size changed", () => {
  assert.deepEqual(
    actions([file("a"), file("b", 11)], [file("a", 10, T + 1), file("b", 12)]),
    { a: "update", b: "update" },
  );
});

Deno.test("planSync() with checksum verifies files of the same size whatever their time", () => {
  const plan = planSync(
    [file("a"), file("b"), file("c", 11)],
    [file("a"), file("b", 10, T - 5000), file("c", 12)],
    { checksum: true },
  );
  assert.deepEqual(plan.items.map((item) => item.action), [
    "verify",
    "verify",
    "update",
  ]);
  assert.equal(plan.items[0].destSize, 10);
});

Deno.test("planSync() plans an append for a grown file, and an update for a shrunk or small one", () => {
  const big = APPEND_MIN_BYTES;
  const plan = planSync(
    [file("grown", big + 100), file("shrunk", big), file("small", 100)],
    [file("grown", big, T - 1), file("shrunk", big + 1), file("small", 50)],
  );
  assert.deepEqual(
    plan.items.map((item) => [item.action, item.destSize]),
    [["append", big], ["update", undefined], ["update", undefined]],
  );
});

Deno.test("planSync() replaces a file by a folder and a folder by a file, clearing the old entry first", () => {
  const plan = planSync(
    [dir("x"), file("x/inner"), file("y")],
    [file("x"), dir("y"), file("y/old"), dir("y/deep"), file("y/deep/z")],
    { delete: true },
  );
  assert.deepEqual(
    plan.items.map((item) => [item.name, item.action, item.clear]),
    [
      ["x", "update", "file"],
      ["x/inner", "create", undefined],
      ["y", "update", "dir"],
    ],
  );
  // The folder's contents go with it: no separate deletes.
  assert.deepEqual(plan.deletes, []);
});

Deno.test("planSync() refuses to write through a symbolic link in the destination, or below it", () => {
  const plan = planSync(
    [dir("l"), file("l/a"), dir("l/b"), file("l/b/c"), file("f"), file("ok")],
    [
      { name: "l", kind: "link", size: 0, mtime: T },
      { name: "f", kind: "link", size: 0, mtime: T },
    ],
    { delete: true },
  );
  assert.deepEqual(
    plan.items.map((item) => [item.name, item.action]),
    [
      ["l", "refuse"],
      ["l/a", "refuse"],
      ["l/b", "refuse"],
      ["l/b/c", "refuse"],
      ["f", "refuse"],
      ["ok", "create"],
    ],
  );
  assert.match(plan.items[0].reason!, /symbolic link/);
  assert.deepEqual(plan.deletes, []);
  assert.ok(!plan.folderTimes.some((folder) => folder.name.startsWith("l")));
});

Deno.test("planSync() deletes only the topmost entries the source lacks, links themselves included, and only when asked", () => {
  const source = [dir("d"), file("d/keep")];
  const dest = [
    dir("d"),
    file("d/keep"),
    file("d/extra"),
    dir("gone"),
    file("gone/a"),
    dir("gone/b"),
    file("gone/b/c"),
    { name: "link", kind: "link" as const, size: 0, mtime: T },
  ];
  assert.deepEqual(
    planSync(source, dest, { delete: true }).deletes.map((item) => [
      item.name,
      item.kind,
    ]),
    [["d/extra", "file"], ["gone", "dir"], ["link", "link"]],
  );
  assert.deepEqual(planSync(source, dest).deletes, []);
});

Deno.test("planSync() sets the times of changed folders deepest first, the top folder last", () => {
  const plan = planSync(
    [dir("a"), dir("a/b"), file("a/b/new"), dir("same"), file("same/f")],
    [dir("a"), dir("a/b"), dir("same"), file("same/f")],
    { sourceTime: T, destTime: T },
  );
  assert.deepEqual(plan.folderTimes.map((folder) => folder.name), [
    "a/b",
    "a",
    "",
  ]);
  const idle = planSync([dir("same"), file("same/f")], [
    dir("same"),
    file("same/f"),
  ], { sourceTime: T, destTime: T });
  assert.deepEqual(idle.folderTimes, []);
});

Deno.test("sameTime() compares at milliseconds, or at seconds when one side keeps whole seconds", () => {
  assert.ok(sameTime(T, T));
  assert.ok(!sameTime(T, T + 1));
  assert.ok(sameTime(T, T - 678));
  assert.ok(sameTime(T - 678, T));
  assert.ok(!sameTime(T, T - 678 + 1000));
  assert.ok(sameTime(-1500, -2000));
  assert.ok(!sameTime(-1500, -1000));
});

Deno.test("planSync() finds 10,000 unchanged files unchanged, with nothing to delete", () => {
  const source: SyncEntry[] = [];
  for (let d = 0; d < 100; d++) {
    source.push(dir(`d${d}`));
    for (let f = 0; f < 100; f++) source.push(file(`d${d}/f${f}`));
  }
  const plan = planSync(source, source, { delete: true });
  assert.equal(
    plan.items.filter((item) => item.action === "unchanged").length,
    source.length,
  );
  assert.deepEqual(plan.deletes, []);
});
