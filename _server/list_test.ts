import assert from "node:assert/strict";
import { FerryError } from "../errors.ts";
import { type Libc, strictLibc } from "./dir_handle.ts";
import { readChildren } from "./list.ts";

/** `libc`, but `namesIn` runs `before` first. */
function namesInAfter(libc: Libc, before: () => void): Libc {
  return new Proxy(libc, {
    get(target, key) {
      if (key === "namesIn") {
        return (fd: number) => {
          before();
          return target.namesIn(fd);
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const libc = strictLibc();

Deno.test({
  name: libc === undefined
    ? "readChildren() (strict mode) answers NOT_FOUND for a folder deleted while it is read [ignored: no libc binding]"
    : "readChildren() (strict mode) answers NOT_FOUND for a folder deleted while it is read",
  ignore: libc === undefined,
  fn: async () => {
    const root = await Deno.realPath(
      await Deno.makeTempDir({ prefix: "ferry_test_" }),
    );
    try {
      const folder = `${root}/sub`;
      await Deno.mkdir(folder);
      await Deno.writeTextFile(`${folder}/a.txt`, "a");
      const listed = await readChildren(root, folder, libc);
      assert.deepEqual(listed.map((child) => child.entry.name), ["a.txt"]);
      const deleting = namesInAfter(libc!, () => {
        Deno.removeSync(folder, { recursive: true });
      });
      await assert.rejects(
        () => readChildren(root, folder, deleting),
        (error) =>
          error instanceof FerryError && error.code === "NOT_FOUND" &&
          error.message === "Folder vanished",
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
