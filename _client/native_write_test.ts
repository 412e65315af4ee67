import assert from "node:assert/strict";
import { HeldFolders, nativeWrite, notAFolder } from "./native_write.ts";
import { openReceiver } from "./receiver.ts";
import { FerryError } from "../errors.ts";

const native = nativeWrite();
const OLD = Date.UTC(2021, 5, 6, 7, 8, 9, 123);
/** Said in the name of a test that cannot run here. */
const NEEDS = native === undefined
  ? " (ignored: needs libc, --allow-ffi, --allow-read and --allow-write)"
  : "";

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "nativeWrite() saves a file whole under its name, with its time, and leaves no part" +
    NEEDS,
  ignore: native === undefined,
  fn: () =>
    withDir(async (dir) => {
      await Deno.mkdir(`${dir}/sub`);
      const folders = new HeldFolders(native!, dir);
      try {
        const receiver = await openReceiver(`${dir}/sub/a.bin`, false, {
          checked: true,
          native: {
            native: native!,
            folders,
            folder: ["sub"],
            key: "sub",
            name: "a.bin",
          },
        });
        assert(receiver.saveWhole !== undefined, "the libc receiver is used");
        const bytes = new Uint8Array(3000).map((_, i) => i % 251);
        // The part exists while the reply is awaited, as on the Deno path.
        assert((await Deno.lstat(`${dir}/sub/a.bin.part`)).isFile);
        receiver.saveWhole(bytes, OLD);
        assert.deepEqual(await Deno.readFile(`${dir}/sub/a.bin`), bytes);
        const info = await Deno.stat(`${dir}/sub/a.bin`);
        assert.equal(info.mtime?.getTime(), OLD);
        assert.deepEqual(
          [...Deno.readDirSync(`${dir}/sub`)].map((entry) => entry.name),
          ["a.bin"],
        );
      } finally {
        folders.close();
      }
    }),
});

Deno.test({
  name:
    "A libc receiver discarded after its commit leaves the folder alone (nothing is unlinked twice)" +
    NEEDS,
  ignore: native === undefined,
  fn: () =>
    withDir(async (dir) => {
      await Deno.mkdir(`${dir}/sub`);
      const folders = new HeldFolders(native!, dir);
      try {
        const receiver = await openReceiver(`${dir}/sub/a.bin`, false, {
          checked: true,
          native: {
            native: native!,
            folders,
            folder: ["sub"],
            key: "sub",
            name: "a.bin",
          },
        });
        receiver.saveWhole!(new Uint8Array(10), OLD);
        // A later download's part of the same name, in the same folder.
        await Deno.writeTextFile(`${dir}/sub/a.bin.part`, "someone else's");
        await receiver.discard();
        assert.equal(
          await Deno.readTextFile(`${dir}/sub/a.bin.part`),
          "someone else's",
        );
        assert.equal((await Deno.stat(`${dir}/sub/a.bin`)).size, 10);
      } finally {
        folders.close();
      }
    }),
});

Deno.test({
  name:
    "openReceiver() with a libc target refuses a folder swapped for a symbolic link and writes nothing through it" +
    NEEDS,
  ignore: native === undefined,
  fn: () =>
    withDir(async (dir) => {
      await Deno.mkdir(`${dir}/dest`);
      await Deno.mkdir(`${dir}/outside`);
      // SafeDest saw a real folder; a local user then planted a link.
      await Deno.symlink(`${dir}/outside`, `${dir}/dest/sub`);
      const folders = new HeldFolders(native!, `${dir}/dest`);
      try {
        assert(notAFolder(folders.acquire(["sub"])));
        await assert.rejects(
          openReceiver(`${dir}/dest/sub/a.bin`, false, {
            checked: true,
            native: {
              native: native!,
              folders,
              folder: ["sub"],
              key: "sub",
              name: "a.bin",
            },
          }),
          (error) => error instanceof FerryError && error.code === "FORBIDDEN",
        );
        assert.deepEqual([...Deno.readDirSync(`${dir}/outside`)], []);
      } finally {
        folders.close();
      }
    }),
});

Deno.test({
  name:
    "nativeWrite() never creates a part through a planted link, and the Deno path then says why" +
    NEEDS,
  ignore: native === undefined,
  fn: () =>
    withDir(async (dir) => {
      await Deno.mkdir(`${dir}/dest`);
      await Deno.writeTextFile(`${dir}/target`, "keep");
      await Deno.symlink(`${dir}/target`, `${dir}/dest/a.bin.part`);
      const folders = new HeldFolders(native!, `${dir}/dest`);
      try {
        const fd = folders.acquire([]);
        assert(fd >= 0);
        assert.equal(native!.createPart(fd, "a.bin"), undefined);
        folders.release([]);
        await assert.rejects(
          openReceiver(`${dir}/dest/a.bin`, false, {
            checked: true,
            native: {
              native: native!,
              folders,
              folder: [],
              key: "",
              name: "a.bin",
            },
          }),
          (error) => error instanceof FerryError && error.code === "LOCAL",
        );
        assert.equal(await Deno.readTextFile(`${dir}/target`), "keep");
      } finally {
        folders.close();
      }
    }),
});

Deno.test({
  name:
    "HeldFolders keeps a folder in use open past its limit and closes every one at the end" +
    NEEDS,
  ignore: native === undefined,
  fn: () =>
    withDir(async (dir) => {
      const folders = new HeldFolders(native!, dir);
      try {
        for (let i = 0; i < 70; i++) await Deno.mkdir(`${dir}/d${i}`);
        const first = folders.acquire(["d0"]);
        for (let i = 1; i < 70; i++) {
          assert(folders.acquire([`d${i}`]) >= 0);
          folders.release([`d${i}`]);
        }
        // Still open: the part is created in the folder held.
        const part = native!.createPart(first, "x");
        assert(part !== undefined);
        native!.commitPart(part, undefined);
        folders.release(["d0"]);
        assert((await Deno.lstat(`${dir}/d0/x`)).isFile);
      } finally {
        folders.close();
      }
    }),
});
