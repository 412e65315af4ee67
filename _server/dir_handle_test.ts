import assert from "node:assert/strict";
import { AT_SYMLINK_NOFOLLOW, openFolderAt, strictLibc } from "./dir_handle.ts";
import { FerryError } from "../errors.ts";

const libc = strictLibc();
const ignore = libc === undefined;

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.realPath(
    await Deno.makeTempDir({ prefix: "ferry_test_" }),
  );
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof FerryError) return error.code;
    throw error;
  }
}

Deno.test({
  name: "strictLibc() is on under --allow-ffi on Linux (ignored elsewhere)",
  ignore: Deno.build.os !== "linux",
  fn() {
    assert(libc !== undefined);
  },
});

Deno.test({
  name:
    "Libc.namesIn() reads every name of a folder from its descriptor, without . and .. nor a name that is not UTF-8",
  ignore,
  async fn() {
    await withRoot(async (root) => {
      // More records than one 32 KiB read holds (long names: few files).
      const expected: string[] = ["sub", "link", "é.txt"];
      for (let i = 0; i < 160; i++) expected.push(`${"n".repeat(220)}_${i}`);
      await Deno.mkdir(`${root}/sub`);
      await Deno.symlink("/tmp", `${root}/link`);
      for (const name of expected.slice(2)) {
        Deno.writeFileSync(`${root}/${name}`, new Uint8Array());
      }
      // A name of Latin-1 bytes, made through a descriptor-free path.
      const latin1 = new Uint8Array([
        ...new TextEncoder().encode(root),
        0x2f,
        0xe9,
        0,
      ]);
      const bytesLib = Deno.dlopen("libc.so.6", {
        creat: { parameters: ["buffer", "u32"], result: "i32" },
        close: { parameters: ["i32"], result: "i32" },
      });
      try {
        const fd = bytesLib.symbols.creat(latin1, 0o644);
        assert(fd >= 0);
        bytesLib.symbols.close(fd);
      } finally {
        bytesLib.close();
      }
      const fd = openFolderAt(libc!, root, [], "");
      try {
        const names = libc!.namesIn(fd);
        assert(names !== undefined, "glibc has getdents64");
        assert.deepEqual(names.sort(), expected.sort());
      } finally {
        libc!.close(fd);
      }
    });
  },
});

Deno.test({
  name: "openFolderAt() walks real folders and refuses a link on the way",
  ignore,
  async fn() {
    await withRoot(async (root) => {
      const outside = await Deno.makeTempDir({ prefix: "ferry_test_" });
      try {
        await Deno.mkdir(`${root}/a/b`, { recursive: true });
        await Deno.symlink(outside, `${root}/a/out`);
        await Deno.symlink(`${root}/a/b`, `${root}/a/in`);
        await Deno.writeTextFile(`${root}/a/file`, "x");
        libc!.close(openFolderAt(libc!, root, ["a", "b"], "a/b"));
        libc!.close(openFolderAt(libc!, root, [], ""));
        assert.equal(
          codeOf(() => openFolderAt(libc!, root, ["a", "out"], "a/out")),
          "FORBIDDEN",
        );
        // Even a link that stays inside is never followed.
        assert.equal(
          codeOf(() => openFolderAt(libc!, root, ["a", "in"], "a/in")),
          "FORBIDDEN",
        );
        assert.equal(
          codeOf(() => openFolderAt(libc!, root, ["a", "file"], "a/file")),
          "FORBIDDEN",
        );
        assert.equal(
          codeOf(() => openFolderAt(libc!, root, ["a", "none"], "a/none")),
          "NOT_FOUND",
        );
      } finally {
        await Deno.remove(outside, { recursive: true });
      }
    });
  },
});

Deno.test({
  name:
    "Libc makes, times, links, renames, stats and unlinks relative to a folder",
  ignore,
  async fn() {
    await withRoot(async (root) => {
      const fd = openFolderAt(libc!, root, [], "");
      try {
        libc!.mkdirAt(fd, "d");
        assert.throws(() => libc!.mkdirAt(fd, "d"), { code: "EEXIST" });
        libc!.setMtimeAt(fd, "d", Date.UTC(2020, 0, 1, 0, 0, 0, 250));
        const info = await Deno.stat(`${root}/d`);
        assert.equal(info.mtime?.getTime(), Date.UTC(2020, 0, 1, 0, 0, 0, 250));
        const status = libc!.statAt(fd, "d", AT_SYMLINK_NOFOLLOW);
        assert(status.isDirectory);
        assert.equal(status.ino, info.ino);
        assert.equal(status.mtime, Date.UTC(2020, 0, 1, 0, 0, 0, 250));

        libc!.close(libc!.createAt(fd, "t"));
        assert.throws(() => libc!.createAt(fd, "t"), { code: "EEXIST" });
        await Deno.writeTextFile(`${root}/t`, "hello");
        const file = libc!.statAt(fd, "t", 0);
        assert(file.isFile);
        assert.equal(file.size, 5);
        assert.equal(file.nlink, 1);
        libc!.linkAt(fd, "t", fd, "u");
        assert.throws(() => libc!.linkAt(fd, "t", fd, "u"), {
          code: "EEXIST",
        });
        assert.equal(libc!.statAt(fd, "u", 0).nlink, 2);
        libc!.renameAt(fd, "t", fd, "v");
        assert.equal(await Deno.readTextFile(`${root}/v`), "hello");
        libc!.unlinkAt(fd, "u");
        libc!.unlinkAt(fd, "v");
        assert.throws(() => libc!.statAt(fd, "v", 0), Deno.errors.NotFound);

        await Deno.symlink("/etc/hostname", `${root}/l`);
        assert(libc!.statAt(fd, "l", AT_SYMLINK_NOFOLLOW).isSymlink);
        assert.throws(() => libc!.createAt(fd, "l"), { code: "EEXIST" });
      } finally {
        libc!.close(fd);
      }
    });
  },
});
