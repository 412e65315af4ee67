/**
 * Files a local user plants inside the root: symbolic links, hard links
 * and FIFOs at the names the server opens (upload parts, files it reads).
 * None may redirect a write, block a request or survive a refusal.
 *
 * @module
 */

import assert from "node:assert/strict";
import { closeSync, constants as fsConstants, openSync } from "node:fs";
import { resumablePartName } from "../_server/upload_part.ts";
import { openInside } from "../_server/path_jail.ts";
import { RawClient, testBytes, withServer } from "./_util/server.ts";
import { within } from "./_util/faults.ts";
import { hasCommand, rejectsWith } from "./_util/util.ts";

const HAS_MKFIFO = Deno.build.os !== "windows" &&
  await hasCommand("mkfifo", ["--version"]);
const FIFO_IGNORED = HAS_MKFIFO ? "" : " (ignored: no mkfifo)";

async function mkfifo(path: string): Promise<void> {
  const made = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(made.success, "mkfifo failed");
}

/** Sends a resumable PUT of `size` bytes; returns the first reply. */
async function resumablePut(
  port: number,
  path: string,
  size: number,
  mtime: number,
): Promise<{ raw: RawClient; reply: string }> {
  const raw = await RawClient.open(port);
  await raw.send({
    type: "put",
    path,
    size,
    overwrite: false,
    resume: true,
    mtime,
  });
  const reply = await raw.next();
  return {
    raw,
    reply: reply?.type === "error" ? `ERROR ${reply.code}` : `${reply?.type}`,
  };
}

Deno.test("serve() refuses a resumable PUT whose part is a symbolic link, and writes nothing outside", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const mtime = Date.UTC(2021, 0, 1);
    const part = `${t.root}/${resumablePartName(`${t.root}/a.bin`, 1, mtime)}`;
    // A link to a file outside: it must not be emptied or written.
    await Deno.symlink(`${t.base}/canary.txt`, part);
    const first = await resumablePut(t.port, "a.bin", 1, mtime);
    first.raw.close();
    assert.equal(first.reply, "ERROR FORBIDDEN");
    assert.equal(await Deno.readTextFile(`${t.base}/canary.txt`), t.canary);
    // A dangling link: nothing may be created where it points.
    await Deno.remove(part);
    await Deno.symlink(`${t.base}/made.txt`, part);
    const second = await resumablePut(t.port, "a.bin", 1, mtime);
    second.raw.close();
    assert.equal(second.reply, "ERROR FORBIDDEN");
    await assert.rejects(
      Deno.lstat(`${t.base}/made.txt`),
      Deno.errors.NotFound,
    );
    await assert.rejects(Deno.lstat(`${t.root}/a.bin`), Deno.errors.NotFound);
  });
});

Deno.test("serve() refuses a resumable PUT whose part is a hard link to a file outside", async () => {
  await withServer({ allowUpload: true }, async (t) => {
    const mtime = Date.UTC(2021, 0, 1);
    const size = 1000;
    const part = `${t.root}/${
      resumablePartName(`${t.root}/a.bin`, size, mtime)
    }`;
    // Same file system (both in the temp folder): a second name of canary.
    await Deno.link(`${t.base}/canary.txt`, part);
    const put = await resumablePut(t.port, "a.bin", size, mtime);
    put.raw.close();
    assert.equal(put.reply, "ERROR FORBIDDEN");
    assert.equal(await Deno.readTextFile(`${t.base}/canary.txt`), t.canary);
  });
});

Deno.test({
  name:
    `serve() refuses at once a resumable PUT whose part is a FIFO, and still stops${FIFO_IGNORED}`,
  ignore: !HAS_MKFIFO,
  async fn() {
    let fifo = "";
    try {
      await withServer({ allowUpload: true, drainMs: 200 }, async (t) => {
        const mtime = Date.UTC(2021, 0, 1);
        const size = 256 * 1024; // more than a pipe holds
        fifo = `${t.root}/${resumablePartName(`${t.root}/a.bin`, size, mtime)}`;
        await mkfifo(fifo);
        const put = await resumablePut(t.port, "a.bin", size, mtime);
        try {
          if (put.reply === "ready") {
            // Today's code: the bytes go into the FIFO until it is full.
            await put.raw.sendBytes(testBytes(size)).catch(() => {});
          }
          assert.equal(put.reply, "ERROR FORBIDDEN");
          // A plain upload still works afterwards.
          const raw = await RawClient.open(t.port);
          try {
            assert.equal((await raw.put("b.bin", testBytes(10)))?.type, "ok");
          } finally {
            raw.close();
          }
        } finally {
          put.raw.close();
        }
      });
    } finally {
      // Unblocks a writer stuck in today's code, so the test can end.
      if (fifo !== "") drainFifo(fifo);
    }
  },
});

Deno.test({
  name:
    `openInside() refuses a FIFO at once instead of blocking in open()${FIFO_IGNORED}`,
  ignore: !HAS_MKFIFO,
  async fn() {
    const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
    const root = await Deno.realPath(base);
    const fifo = `${root}/pipe`;
    try {
      await mkfifo(fifo);
      const opening = openInside(root, fifo, "pipe");
      try {
        await within(
          rejectsWith(opening, "FORBIDDEN", /Not a file/),
          5000,
          "openInside() of a FIFO",
        );
      } finally {
        drainFifo(fifo);
        await opening.then((file) => file.close(), () => {});
      }
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

/** Opens a FIFO at both ends for a moment: a blocked open() returns. */
function drainFifo(path: string): void {
  try {
    closeSync(
      openSync(path, fsConstants.O_RDWR | fsConstants.O_NONBLOCK),
    );
  } catch {
    // Gone already.
  }
}
