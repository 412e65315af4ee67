import assert from "node:assert/strict";
import {
  walkFolder,
  walkFoldersFirst,
  type WalkVisitor,
} from "./local_walk.ts";
import { nativeRead } from "./native_read.ts";

/** A visitor that notes each entry as `name:kind`, and each skip. */
function noting(): { seen: string[]; visitor: WalkVisitor } {
  const seen: string[] = [];
  return {
    seen,
    visitor: {
      entry(name, _path, info) {
        const kinds = { link: info.isSymlink, dir: info.isDirectory };
        const kind = Object.entries(kinds).find(([, is]) => is)?.[0];
        seen.push(`${name}:${kind ?? (info.isFile ? "file" : "other")}`);
      },
      skip(name, reason) {
        seen.push(`${name}:skipped ${reason}`);
      },
    },
  };
}

/** a/x.txt, b.txt, c/d/e.txt, f (a link to b.txt), and a bad name. */
async function makeTree(root: string): Promise<void> {
  await Deno.mkdir(`${root}/a`);
  await Deno.mkdir(`${root}/c/d`, { recursive: true });
  await Deno.writeTextFile(`${root}/a/x.txt`, "x");
  await Deno.writeTextFile(`${root}/b.txt`, "b");
  await Deno.writeTextFile(`${root}/c/d/e.txt`, "e");
  await Deno.symlink("b.txt", `${root}/f`);
  await Deno.writeTextFile(`${root}/g\\h`, "bad");
}

Deno.test("walkFoldersFirst() reports every folder (and link) before the first file, then the files in walkFolder()'s order", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await makeTree(root);
    const first = noting();
    const files = walkFoldersFirst(root, first.visitor);
    const before = [...first.seen];
    let steps = 0;
    for (const _ of files) steps++;
    assert.deepEqual(before, [
      "a:dir",
      "c:dir",
      "c/d:dir",
      "f:link",
      "g\\h:skipped name not allowed (backslash)",
    ]);
    assert.deepEqual(first.seen.slice(before.length), [
      "a/x.txt:file",
      "b.txt:file",
      "c/d/e.txt:file",
    ]);
    assert.equal(steps, 3);
    const whole = noting();
    await walkFolder(root, whole.visitor);
    assert.deepEqual(
      whole.seen.filter((line) => line.endsWith(":file")),
      first.seen.filter((line) => line.endsWith(":file")),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("walkFoldersFirst() takes a file's status when it reaches it: one removed is left out, one now a link is a link, one now a folder is walked in its place", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await makeTree(root);
    const { seen, visitor } = noting();
    const files = walkFoldersFirst(root, visitor);
    const before = seen.length;
    await Deno.remove(`${root}/a/x.txt`);
    await Deno.remove(`${root}/b.txt`);
    await Deno.mkdir(`${root}/b.txt`);
    await Deno.writeTextFile(`${root}/b.txt/inside`, "i");
    await Deno.remove(`${root}/c/d/e.txt`);
    await Deno.symlink("../../a", `${root}/c/d/e.txt`);
    for (const _ of files) { /* each step reports one entry */ }
    assert.deepEqual(seen.slice(before), [
      "b.txt:dir",
      "b.txt/inside:file",
      "c/d/e.txt:link",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("walkFoldersFirst() skips a folder swapped for a link (or another folder) after the first pass instead of reading through it", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  const outside = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.mkdir(`${root}/sub/deep`, { recursive: true });
    await Deno.mkdir(`${root}/other`);
    await Deno.writeTextFile(`${root}/sub/shadow`, "mine");
    await Deno.writeTextFile(`${root}/sub/deep/key`, "mine");
    await Deno.writeTextFile(`${root}/other/shadow`, "mine");
    await Deno.writeTextFile(`${root}/z.txt`, "z");
    await Deno.mkdir(`${outside}/deep`);
    await Deno.writeTextFile(`${outside}/shadow`, "secret");
    await Deno.writeTextFile(`${outside}/deep/key`, "secret");
    const { seen, visitor } = noting();
    const paths: string[] = []; // of the second pass
    let second = false;
    const files = walkFoldersFirst(root, {
      entry(name, path, info) {
        if (second) paths.push(path);
        visitor.entry(name, path, info);
      },
      skip: visitor.skip,
    });
    const before = seen.length;
    await Deno.rename(`${root}/sub`, `${root}/sub.old`);
    await Deno.symlink(outside, `${root}/sub`);
    await Deno.rename(`${root}/other`, `${root}/other.old`);
    await Deno.mkdir(`${root}/other`);
    await Deno.writeTextFile(`${root}/other/shadow`, "planted");
    second = true;
    for (const _ of files) { /* each step reports one entry */ }
    assert.deepEqual(seen.slice(before), [
      "other:skipped the folder changed while it was read (replaced or removed)",
      "sub:skipped the folder changed while it was read (replaced or removed)",
      "z.txt:file",
    ]);
    assert.deepEqual(paths, [`${root}/z.txt`]);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("walkFoldersFirst() reports a name that is not UTF-8 as skipped", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.mkdir(`${root}/sub`);
    await Deno.writeTextFile(`${root}/sub/ok.txt`, "ok");
    // The bytes 0xff 'x': no string names it, so the shell makes it.
    const made = await new Deno.Command("sh", {
      args: ["-c", "touch \"$(printf '\\377x')\""],
      cwd: `${root}/sub`,
    }).output();
    assert(made.success);
    const { seen, visitor } = noting();
    for (const _ of walkFoldersFirst(root, visitor)) { /* the files */ }
    assert.deepEqual(seen, [
      "sub:dir",
      "sub/\uFFFDx:skipped name is not UTF-8",
      "sub/ok.txt:file",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("walkFoldersFirst() throws at once when the top folder cannot be read", async () => {
  const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    assert.throws(
      () => walkFoldersFirst(`${root}/missing`, noting().visitor),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const held = nativeRead()?.readsFolders === true;

Deno.test({
  name:
    `walkFoldersFirst() with libc never goes through a parent folder swapped for a link, in either pass${
      held ? "" : " (ignored: needs libc with getdents64 and --allow-ffi)"
    }`,
  ignore: !held,
  fn: async () => {
    const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      const root = `${base}/root`;
      // Inside: a/0 a file, a/b a folder. Outside: the same names, with a
      // secret and a sub-folder that must never be reported.
      await Deno.mkdir(`${root}/a/b`, { recursive: true });
      await Deno.writeTextFile(`${root}/a/0`, "in0");
      await Deno.writeTextFile(`${root}/a/b/in.txt`, "in");
      await Deno.mkdir(`${base}/out/b/c`, { recursive: true });
      await Deno.writeTextFile(`${base}/out/0`, "out0");
      await Deno.writeTextFile(`${base}/out/b/secret`, "secret");
      await Deno.writeTextFile(`${base}/out/b/in.txt`, "outside");
      const swap = (): void => {
        Deno.renameSync(`${root}/a`, `${base}/a.real`);
        Deno.symlinkSync(`${base}/out`, `${root}/a`);
      };
      const restore = (): void => {
        Deno.removeSync(`${root}/a`);
        Deno.renameSync(`${base}/a.real`, `${root}/a`);
      };
      const native = nativeRead()!;
      const seen: string[] = [];
      const read: string[] = [];
      let walking = true;
      const files = walkFoldersFirst(root, {
        entry(name, path, info, at) {
          seen.push(name);
          // First pass: `a` is swapped while its sub-folder `b` is read.
          if (walking && name === "a/b") swap();
          if (!info.isFile) return;
          const into = new Uint8Array(16);
          const got = at === undefined
            ? native.readWhole(path, into)
            : native.readWholeAt(at.folder.fd, at.name, into);
          if (got !== undefined) {
            read.push(new TextDecoder().decode(into.subarray(0, got.read)));
          }
        },
        skip(name, reason) {
          seen.push(`${name}: ${reason}`);
        },
      });
      walking = false;
      // Second pass: `a` is back while it is held, swapped after `a/0`.
      restore();
      for (let step = files.next(); !step.done; step = files.next()) {
        if (seen.at(-1) === "a/0") swap();
      }
      assert.deepEqual(seen, ["a", "a/b", "a/0", "a/b/in.txt"]);
      assert.deepEqual(read, ["in0", "in"]);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
