import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { closeSync, readSync } from "node:fs";
import { openProvenSync, resolveExistingSync } from "./path_jail.ts";
import { answerHeldNow, sendSmallFile } from "./small_get.ts";
import { strictLibc } from "./dir_handle.ts";
import { HeldFolder } from "./held_folder.ts";
import { REPLY_ROOM_BYTES } from "./reply_batch.ts";
import { nativeXxh3 } from "../_common/native_xxh3.ts";
import { makeBulkBuffers } from "../_common/copy.ts";
import { FerryError } from "../errors.ts";
import { decodeFrame } from "../protocol.ts";

const LINUX = Deno.build.os === "linux";

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof FerryError) return error.code;
    throw error;
  }
}

Deno.test({
  name:
    "openProvenSync() reads the file it proved and refuses one reached through a link out of the root",
  ignore: Deno.build.os === "windows",
  fn() {
    const base = Deno.makeTempDirSync({ prefix: "ferry_test_" });
    try {
      Deno.mkdirSync(`${base}/root`);
      Deno.mkdirSync(`${base}/outside`);
      Deno.writeTextFileSync(`${base}/root/a.txt`, "inside");
      Deno.writeTextFileSync(`${base}/outside/f.txt`, "canary");
      Deno.symlinkSync(`${base}/outside`, `${base}/root/out`);
      const root = Deno.realPathSync(`${base}/root`);
      const proven = openProvenSync(root, `${root}/a.txt`, "a.txt");
      try {
        assert.ok(proven.info.isFile);
        const bytes = new Uint8Array(proven.info.size);
        readSync(proven.fd, bytes, 0, bytes.length, 0);
        assert.equal(new TextDecoder().decode(bytes), "inside");
      } finally {
        closeSync(proven.fd);
      }
      // The name check would refuse `out/f.txt` first; the proof refuses
      // it on its own too (a folder swapped after the name check).
      assert.equal(
        code(() => openProvenSync(root, `${root}/out/f.txt`, "out/f.txt")),
        "FORBIDDEN",
      );
      assert.equal(
        code(() => resolveExistingSync(root, "out/f.txt")),
        "FORBIDDEN",
      );
      assert.equal(code(() => resolveExistingSync(root, "nope")), "NOT_FOUND");
    } finally {
      Deno.removeSync(base, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "openProvenSync() opens a FIFO without blocking and shows it is not a file",
  ignore: !LINUX,
  async fn() {
    const base = Deno.makeTempDirSync({ prefix: "ferry_test_" });
    try {
      const made = await new Deno.Command("mkfifo", {
        args: [`${base}/pipe`],
      }).output().catch(() => undefined);
      if (!made?.success) return; // no mkfifo here
      const root = Deno.realPathSync(base);
      const proven = openProvenSync(root, `${root}/pipe`, "pipe");
      try {
        assert.equal(proven.info.isFile, false);
      } finally {
        closeSync(proven.fd);
      }
    } finally {
      Deno.removeSync(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "sendSmallFile() writes DATA, the bytes and HASH in one write",
  async fn() {
    const base = Deno.makeTempDirSync({ prefix: "ferry_test_" });
    try {
      const content = new TextEncoder().encode("hello, small file\n");
      Deno.writeFileSync(`${base}/s.txt`, content);
      const root = Deno.realPathSync(base);
      const writes: Uint8Array[] = [];
      const sent = await sendSmallFile({
        realRoot: root,
        hostPath: `${root}/s.txt`,
        wirePath: "s.txt",
        conn: {
          write(p: Uint8Array): Promise<number> {
            writes.push(p.slice());
            return Promise.resolve(p.length);
          },
        },
        buffers: makeBulkBuffers(64 * 1024 + 256),
        hashCache: undefined,
        algorithm: "sha256",
      });
      assert.deepEqual(sent, { bytes: content.length, cached: false });
      assert.equal(writes.length, 1);
      const data = decodeFrame(writes[0]);
      assert.ok(data && data.message.type === "data");
      assert.equal(data.message.size, content.length);
      const body = writes[0].subarray(data.size, data.size + content.length);
      assert.deepEqual(body, content);
      const hash = decodeFrame(writes[0].subarray(data.size + content.length));
      assert.ok(hash && hash.message.type === "hash");
      assert.deepEqual(
        new Uint8Array(hash.message.digest),
        new Uint8Array(createHash("sha256").update(content).digest()),
      );
      assert.equal(data.size + content.length + hash.size, writes[0].length);
    } finally {
      Deno.removeSync(base, { recursive: true });
    }
  },
});

const HELD_NOW = strictLibc() !== undefined && nativeXxh3() !== undefined;

Deno.test({
  name:
    `answerHeldNow() writes a small file's whole reply where it is told, and takes no room for a large one${
      HELD_NOW ? "" : " (ignored: needs Linux, --allow-ffi and libxxhash)"
    }`,
  ignore: !HELD_NOW,
  async fn() {
    const libc = strictLibc()!;
    const root = await Deno.realPath(
      await Deno.makeTempDir({ prefix: "ferry_test_" }),
    );
    const held = new HeldFolder(libc, root);
    try {
      await Deno.mkdir(`${root}/d`);
      const small = new TextEncoder().encode("small file");
      await Deno.writeFile(`${root}/d/small.txt`, small);
      await Deno.writeFile(`${root}/d/large.bin`, new Uint8Array(100_000));
      const room = new Uint8Array(REPLY_ROOM_BYTES);
      let asked = 0;
      const get = (wirePath: string) =>
        answerHeldNow({
          libc,
          held,
          wirePath,
          into: () => {
            asked++;
            return room;
          },
          algorithm: "xxh3-128",
        });
      assert.equal(get("d/large.bin"), undefined);
      assert.equal(asked, 0, "a large file takes no room");
      const answered = get("d/small.txt");
      assert.equal(asked, 1);
      assert.equal(answered?.size, small.length);
      const data = decodeFrame(room.subarray(0, answered!.reply))!;
      assert.equal(data.message.type, "data");
      const body = room.subarray(data.size, data.size + small.length);
      assert.deepEqual(body, small);
      const hash = decodeFrame(
        room.subarray(data.size + small.length, answered!.reply),
      )!;
      assert.equal(hash.message.type, "hash");
      assert.equal(data.size + small.length + hash.size, answered!.reply);
      assert.deepEqual(
        hash.message.type === "hash" && hash.message.digest,
        nativeXxh3()!.hash(small),
      );
      // Not a file, a link, a missing name: not answered here.
      await Deno.symlink(`${root}/d/small.txt`, `${root}/d/link.txt`);
      for (const path of ["d", "d/link.txt", "d/none.txt"]) {
        assert.equal(get(path), undefined, path);
      }
    } finally {
      held.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
