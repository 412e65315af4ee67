import assert from "node:assert/strict";
import { nativeRead } from "./native_read.ts";
import { DT_REG } from "../_common/dirents.ts";

const reader = nativeRead();
const why = reader
  ? ""
  : " (ignored: needs --allow-ffi and --allow-read on Linux)";

Deno.test({
  name:
    `nativeRead() reads a file whole with its size and time, and gives up on anything else${why}`,
  ignore: reader === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      const path = `${dir}/a.bin`;
      await Deno.writeFile(path, new Uint8Array([1, 2, 3, 4, 5]));
      await Deno.utime(
        path,
        new Date(),
        new Date(Date.UTC(2001, 0, 2, 3, 4, 5, 678)),
      );
      const into = new Uint8Array(5);
      const info = Deno.statSync(path);
      assert.deepEqual(reader!.readWhole(path, into), {
        dev: info.dev,
        ino: info.ino,
        read: 5,
        size: 5,
        mtime: Date.UTC(2001, 0, 2, 3, 4, 5, 678),
      });
      assert.deepEqual(into, new Uint8Array([1, 2, 3, 4, 5]));
      // A shorter buffer: what fits, and the real size to compare.
      assert.deepEqual(reader!.readWhole(path, new Uint8Array(2))?.size, 5);
      // Not there, a folder, a FIFO (opened without blocking): undefined.
      assert.equal(reader!.readWhole(`${dir}/missing`, into), undefined);
      assert.equal(reader!.readWhole(dir, into), undefined);
      const fifo = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] })
        .output();
      if (fifo.success) {
        assert.equal(reader!.readWhole(`${dir}/fifo`, into), undefined);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `nativeRead().lstat() reports files, folders and links (not followed) as Deno.lstatSync does${why}`,
  ignore: reader === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      await Deno.writeFile(`${dir}/a.bin`, new Uint8Array(7));
      await Deno.utime(
        `${dir}/a.bin`,
        new Date(),
        new Date(Date.UTC(2002, 1, 3, 4, 5, 6, 789)),
      );
      await Deno.mkdir(`${dir}/d`);
      await Deno.symlink(`${dir}/d`, `${dir}/link`);
      for (const name of ["a.bin", "d", "link"]) {
        const got = reader!.lstat(`${dir}/${name}`);
        const want = Deno.lstatSync(`${dir}/${name}`);
        assert.deepEqual(
          {
            isFile: got?.isFile,
            isDirectory: got?.isDirectory,
            isSymlink: got?.isSymlink,
            size: got?.size,
            mtime: got?.mtime?.getTime(),
          },
          {
            isFile: want.isFile,
            isDirectory: want.isDirectory,
            isSymlink: want.isSymlink,
            size: want.size,
            mtime: want.mtime?.getTime(),
          },
          name,
        );
      }
      assert.equal(reader!.lstat(`${dir}/link`)?.isSymlink, true);
      assert.equal(reader!.lstat(`${dir}/missing`), undefined);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `NativeRead.readFolder() names a folder's entries as Deno.readDirSync does, regular files by type, gives up on a file, and on a link unless asked to follow it${why}`,
  ignore: reader === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      for (let i = 0; i < 600; i++) {
        await Deno.writeTextFile(`${dir}/file-${i}-${"x".repeat(60)}`, "");
      }
      await Deno.mkdir(`${dir}/sub`);
      await Deno.symlink("sub", `${dir}/link`);
      const read = reader!.readFolder(dir, false)!;
      const expected = [...Deno.readDirSync(dir)];
      assert.deepEqual(
        read.names.toSorted(),
        expected.map((entry) => entry.name).toSorted(),
      );
      const files = read.names.filter((_, i) => read.types[i] === DT_REG);
      assert.deepEqual(
        files.toSorted(),
        expected.filter((entry) => entry.isFile).map((entry) => entry.name)
          .toSorted(),
      );
      assert.equal(
        reader!.readFolder(`${dir}/file-0-${"x".repeat(60)}`, false),
        undefined,
      );
      assert.equal(reader!.readFolder(`${dir}/missing`, false), undefined);
      assert.equal(reader!.readFolder(`${dir}/link`, false), undefined);
      const sub = Deno.statSync(`${dir}/sub`);
      const followed = reader!.readFolder(`${dir}/link`, true)!;
      assert.deepEqual([followed.dev, followed.ino], [sub.dev, sub.ino]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
