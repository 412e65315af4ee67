import assert from "node:assert/strict";
import { strictLibc } from "./dir_handle.ts";
import { type PlaceJob, placeRun, TempNames } from "./eager_place.ts";

const libc = strictLibc();
const encoder = new TextEncoder();

/** Jobs for `texts` (path → content), their bytes one after another. */
function jobsOf(
  texts: [string, string, Partial<PlaceJob>?][],
): { jobs: PlaceJob[]; bytes: Uint8Array } {
  const jobs: PlaceJob[] = [];
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [path, text, extra] of texts) {
    const bytes = encoder.encode(text);
    const slash = path.lastIndexOf("/");
    jobs.push({
      path,
      folder: slash < 0 ? "" : path.slice(0, slash),
      name: path.slice(slash + 1),
      offset,
      size: bytes.length,
      overwrite: false,
      identity: false,
      ...extra,
    });
    parts.push(bytes);
    offset += bytes.length;
  }
  const bytes = new Uint8Array(offset);
  offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return { jobs, bytes };
}

async function names(folder: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(folder)) found.push(entry.name);
  return found.sort();
}

Deno.test({
  name:
    "placeRun() places a run in order and refuses links on the way, links and folders as targets, and taken names" +
    (libc ? "" : " (ignored: needs libc through --allow-ffi on Linux)"),
  ignore: libc === undefined,
  async fn() {
    const root = await Deno.realPath(
      await Deno.makeTempDir({ prefix: "ferry_test_" }),
    );
    const outside = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      await Deno.mkdir(`${root}/d`);
      await Deno.writeTextFile(`${root}/d/taken`, "old");
      await Deno.symlink(outside, `${root}/link`);
      await Deno.symlink(`${outside}/x`, `${root}/d/tolink`);
      const { jobs, bytes } = jobsOf([
        ["d/a", "alpha", { mtime: Date.UTC(2001, 1, 2) }],
        ["link/b", "escape"],
        ["d/taken", "new"],
        ["d/tolink", "over a link", { overwrite: true }],
        ["d", "over a folder", { overwrite: true }],
        ["c", "gamma"],
      ]);
      const outcomes = await placeRun(
        libc!,
        root,
        jobs,
        bytes,
        new TempNames(),
      );
      assert.deepEqual(outcomes.map((o) => o.code ?? "ok"), [
        "ok",
        "FORBIDDEN",
        "EXISTS",
        "FORBIDDEN",
        "FORBIDDEN",
        "ok",
      ]);
      assert.equal(await Deno.readTextFile(`${root}/d/a`), "alpha");
      assert.equal(
        (await Deno.stat(`${root}/d/a`)).mtime?.getTime(),
        Date.UTC(2001, 1, 2),
      );
      assert.equal(await Deno.readTextFile(`${root}/d/taken`), "old");
      assert.equal(await Deno.readTextFile(`${root}/c`), "gamma");
      assert.deepEqual(await names(outside), [], "nothing outside the root");
      assert.deepEqual(await names(`${root}/d`), ["a", "taken", "tolink"]);
      assert.deepEqual(await names(root), ["c", "d", "link"]);
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(outside, { recursive: true });
    }
  },
});

Deno.test({
  name: "placeRun() reports the placed file's status only when asked" +
    (libc ? "" : " (ignored: needs libc through --allow-ffi on Linux)"),
  ignore: libc === undefined,
  async fn() {
    const root = await Deno.realPath(
      await Deno.makeTempDir({ prefix: "ferry_test_" }),
    );
    try {
      const { jobs, bytes } = jobsOf([
        ["a", "asked", { identity: true }],
        ["b", "not asked"],
      ]);
      const [a, b] = await placeRun(libc!, root, jobs, bytes, new TempNames());
      const info = await Deno.lstat(`${root}/a`);
      assert.equal(a.placed?.ino, info.ino);
      assert.equal(a.placed?.size, 5);
      assert.equal(b.placed, undefined);
      assert.equal(b.code, undefined);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

/**
 * The highest number among 64 descriptors opened at once: descriptors left
 * open elsewhere push it up (one freed low number cannot hide them).
 */
function highestOf64(path: string): number {
  const fds = Array.from({ length: 64 }, () => libc!.openFolder(path));
  for (const fd of fds) libc!.close(fd);
  return Math.max(...fds);
}

Deno.test({
  name:
    "placeRun() closes the folders it walked when a later segment is missing or a link" +
    (libc ? "" : " (ignored: needs libc through --allow-ffi on Linux)"),
  ignore: libc === undefined,
  async fn() {
    const root = await Deno.realPath(
      await Deno.makeTempDir({ prefix: "ferry_test_" }),
    );
    try {
      await Deno.mkdir(`${root}/a/b`, { recursive: true });
      await Deno.symlink("/tmp", `${root}/a/b/link`);
      const texts: [string, string][] = [];
      for (let i = 0; i < 20; i++) {
        texts.push([`a/missing${i}/x`, "x"], [`a/b/link/y${i}`, "y"]);
      }
      const { jobs, bytes } = jobsOf(texts);
      const before = highestOf64(root);
      const outcomes = await placeRun(
        libc!,
        root,
        jobs,
        bytes,
        new TempNames(),
      );
      assert(outcomes.every((o) => o.code !== undefined), "all refused");
      assert.equal(
        highestOf64(root),
        before,
        "no descriptor left open",
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
