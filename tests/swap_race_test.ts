/**
 * Strict mode (`_server/dir_handle.ts`) against a local user who swaps a
 * folder inside the root for a symbolic link out of it while MKDIR, PUT
 * (plain and resumable) and LIST/STAT requests run: a separate swapper process renames `root/d` and a link
 * `root/d.evil` -> `outside` back and forth; nothing may appear or change
 * outside the root, and no outside name or size may be listed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { strictLibc } from "../_server/dir_handle.ts";
import { RawClient, type TestServer, withServer } from "./_util/server.ts";
import type { Message } from "../protocol.ts";

const REQUESTS = 150;

/**
 * The swapper: four renames per swap, so it always ends with `d` the real
 * folder; stops when `stop` exists (checked every 64 swaps) or after 20 s.
 * Prints `swapping` once its first swap is done, and at the end how many
 * swaps it made. A folder MKDIR made at `d` while the real
 * one was away is moved aside (it is inside the root).
 */
const SWAPPER = `
const [root, stop] = Deno.args;
const end = performance.now() + 20_000;
let swaps = 0;
// A MKDIR that finds "d" missing makes it again: that stray goes.
let strays = 0;
function put(from, to) {
  for (;;) {
    try {
      Deno.renameSync(root + from, root + to);
      return;
    } catch {
      Deno.renameSync(root + to, root + "/stray" + strays++);
    }
  }
}
for (;;) {
  Deno.renameSync(root + "/d", root + "/d.real");
  put("/d.evil", "/d");
  Deno.renameSync(root + "/d", root + "/d.evil");
  put("/d.real", "/d");
  swaps++;
  if (swaps === 1) console.log("swapping");
  if (swaps % 64 === 0) {
    if (performance.now() > end) break;
    try { Deno.statSync(stop); break; } catch { /* go on */ }
  }
}
console.log(swaps);
`;

const strict = strictLibc() !== undefined;
const IGNORED = " (ignored: needs --allow-ffi on Linux)";

/**
 * Makes `base/outside` (holding `f.txt` with the canary and
 * `outside-only.txt`) and the link `root/d.evil` to it, runs `fn` while a
 * swapper process swaps `root/d` and that link, then stops the swapper and
 * returns how many swaps it made.
 */
async function duringSwaps(
  t: TestServer,
  fn: () => Promise<void>,
): Promise<number> {
  const outside = `${t.base}/outside`;
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/f.txt`, t.canary);
  await Deno.writeTextFile(`${outside}/outside-only.txt`, "x");
  await Deno.symlink(outside, `${t.root}/d.evil`);
  const stop = `${t.base}/stop`;
  const swapper = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", SWAPPER, t.root, stop],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errors = new Response(swapper.stderr).text();
  const lines = swapper.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let out = "";
  try {
    // The requests start once the swaps have (a process takes a while to
    // start, and fast requests could all be over before the first swap).
    while (!out.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
    await fn();
  } finally {
    await Deno.writeTextFile(stop, "");
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      out += value;
    }
  }
  const status = await swapper.status;
  assert.equal(status.code, 0, await errors);
  await errors;
  const [first, count] = out.trim().split("\n");
  assert.equal(first, "swapping", out);
  const swaps = Number(count);
  assert.ok(swaps > 0);
  return swaps;
}

/** Asserts that `base/outside` holds only what {@linkcode duringSwaps} put there. */
async function assertNothingOutside(t: TestServer): Promise<void> {
  const outside = `${t.base}/outside`;
  const names: string[] = [];
  for await (const entry of Deno.readDir(outside)) names.push(entry.name);
  assert.deepEqual(
    names.sort(),
    ["f.txt", "outside-only.txt"],
    `something was made outside: ${names}`,
  );
  assert.equal(await Deno.readTextFile(`${outside}/f.txt`), t.canary);
}

/** Counts outcomes such as `PUT ok` or `MKDIR FORBIDDEN`. */
class Outcomes {
  #counts = new Map<string, number>();

  count(request: string, reply: Message | null): void {
    const what = `${request} ${
      reply === null
        ? "closed"
        : reply.type === "error"
        ? reply.code
        : reply.type
    }`;
    this.#counts.set(what, (this.#counts.get(what) ?? 0) + 1);
  }

  /** Whether some request met the link and was refused. */
  refused(): boolean {
    return [...this.#counts.keys()].some((k) =>
      / (FORBIDDEN|NOT_FOUND)$/.test(k)
    );
  }

  toString(): string {
    return [...this.#counts].map(([k, v]) => `${k} ${v}`).join(", ");
  }
}

Deno.test({
  name:
    "serve() in strict mode makes nothing outside the root when a folder is swapped for a link during MKDIR, PUT and runs of eager PUTs" +
    (strict ? "" : IGNORED),
  ignore: !strict,
  async fn() {
    await withServer(
      { allowUpload: true, files: { "d/f.txt": "inside" } },
      async (t) => {
        const outside = `${t.base}/outside`;
        const outcomes = new Outcomes();
        const mtime = Date.UTC(2001, 0, 1);
        let canaryBefore: Deno.FileInfo | undefined;
        const swaps = await duringSwaps(t, async () => {
          canaryBefore = await Deno.stat(`${outside}/f.txt`);
          const client = await RawClient.open(t.port);
          try {
            const bytes = new TextEncoder().encode("uploaded");
            for (let i = 0; i < REQUESTS; i++) {
              await client.send({ type: "mkdir", path: `d/m${i}/x`, mtime });
              outcomes.count("MKDIR", await client.next());
              const put = await client.put(
                i % 2 === 0 ? "d/f.txt" : `d/new${i}`,
                bytes,
                { overwrite: i % 2 === 0, mtime },
              );
              outcomes.count("PUT", put);
            }
            // Runs of 10 eager PUTs: a run's folder is held across swaps.
            for (let i = 0; i < REQUESTS; i += 10) {
              const uploads = [];
              for (let j = i; j < i + 10; j++) {
                uploads.push({
                  path: j % 2 === 0 ? "d/f.txt" : `d/eager${j}`,
                  bytes,
                  overwrite: j % 2 === 0,
                  mtime,
                });
              }
              for (const reply of await client.eagerPuts(uploads)) {
                outcomes.count("EAGER", reply);
              }
            }
          } finally {
            client.close();
          }
        });
        console.log(
          `swap race: ${REQUESTS} MKDIR + ${REQUESTS} PUT + ${REQUESTS} eager PUT during ${swaps} swaps: ${outcomes}`,
        );
        await assertNothingOutside(t);
        const canaryAfter = await Deno.stat(`${outside}/f.txt`);
        assert.equal(canaryAfter.ino, canaryBefore?.ino);
        assert.equal(
          canaryAfter.mtime?.getTime(),
          canaryBefore?.mtime?.getTime(),
        );
        // The race really ran: some requests met the link and were refused.
        assert.ok(outcomes.refused(), String(outcomes));
      },
    );
  },
});

Deno.test({
  name:
    "serve() in strict mode makes no part or lease outside the root when a folder is swapped for a link during resumable PUTs" +
    (strict ? "" : IGNORED),
  ignore: !strict,
  async fn() {
    await withServer(
      { allowUpload: true, files: { "d/f.txt": "inside" } },
      async (t) => {
        const outcomes = new Outcomes();
        const swaps = await duringSwaps(t, async () => {
          let client = await RawClient.open(t.port);
          try {
            const bytes = new TextEncoder().encode("uploaded");
            for (let i = 0; i < REQUESTS; i++) {
              // A new part name each time (the name hashes path, size, time).
              const put = await client.put(`d/r${i}`, bytes, {
                resume: true,
                mtime: Date.UTC(2001, 0, 1) + i,
              }).catch(() => null);
              outcomes.count("PUT", put);
              if (put === null) {
                // The server closed the connection: go on with a new one.
                client.close();
                client = await RawClient.open(t.port);
              }
            }
          } finally {
            client.close();
          }
        });
        console.log(
          `swap race: ${REQUESTS} resumable PUT during ${swaps} swaps: ${outcomes}`,
        );
        await assertNothingOutside(t);
        assert.ok(outcomes.refused(), String(outcomes));
      },
    );
  },
});

Deno.test({
  name:
    "serve() in strict mode lists and stats no outside name or size when a folder is swapped for a link during LIST and STAT" +
    (strict ? "" : IGNORED),
  ignore: !strict,
  async fn() {
    await withServer({ files: { "d/f.txt": "inside" } }, async (t) => {
      const outcomes = new Outcomes();
      const leaks: string[] = [];
      const swaps = await duringSwaps(t, async () => {
        const client = await RawClient.open(t.port);
        try {
          for (let i = 0; i < REQUESTS; i++) {
            await client.send({ type: "list", path: "d", recursive: false });
            let reply = await client.next();
            while (reply?.type === "entries") {
              for (const entry of reply.entries) {
                if (entry.name !== "f.txt" || entry.size !== 6) {
                  leaks.push(`LIST ${entry.name} ${entry.size}`);
                }
              }
              reply = await client.next();
            }
            outcomes.count("LIST", reply);
            await client.send({ type: "stat", path: "d/f.txt" });
            const info = await client.next();
            if (info?.type === "info" && info.entry.size !== 6) {
              leaks.push(`STAT size ${info.entry.size}`);
            }
            outcomes.count("STAT", info);
          }
        } finally {
          client.close();
        }
      });
      console.log(
        `swap race: ${REQUESTS} LIST + ${REQUESTS} STAT during ${swaps} swaps: ${outcomes}`,
      );
      assert.deepEqual(leaks, [], "outside names or sizes were returned");
      assert.ok(outcomes.refused(), String(outcomes));
    });
  },
});

Deno.test({
  name:
    "serve() in strict mode removes nothing outside the root when a folder is swapped for a link during DELETE" +
    (strict ? "" : IGNORED),
  ignore: !strict,
  async fn() {
    await withServer(
      {
        allowUpload: true,
        allowDelete: true,
        files: { "d/f.txt": "inside", "d/sub/g.txt": "inside" },
      },
      async (t) => {
        const outside = `${t.base}/outside`;
        const outcomes = new Outcomes();
        const swaps = await duringSwaps(t, async () => {
          await Deno.mkdir(`${outside}/sub`);
          await Deno.writeTextFile(`${outside}/sub/g.txt`, t.canary);
          const client = await RawClient.open(t.port);
          const bytes = new TextEncoder().encode("uploaded");
          try {
            for (let i = 0; i < REQUESTS; i++) {
              outcomes.count(
                "PUT",
                await client.put("d/f.txt", bytes, { overwrite: true }),
              );
              await client.send({
                type: "delete",
                path: "d/f.txt",
                recursive: false,
              });
              outcomes.count("DELETE", await client.next());
              await client.send({
                type: "delete",
                path: "d/sub",
                recursive: true,
              });
              outcomes.count("DELETE-R", await client.next());
              await client.send({ type: "mkdir", path: "d/sub" });
              outcomes.count("MKDIR", await client.next());
            }
          } finally {
            client.close();
          }
        });
        console.log(
          `swap race: ${REQUESTS} x (PUT, DELETE, recursive DELETE, MKDIR) during ${swaps} swaps: ${outcomes}`,
        );
        assert.equal(await Deno.readTextFile(`${outside}/f.txt`), t.canary);
        assert.equal(
          await Deno.readTextFile(`${outside}/sub/g.txt`),
          t.canary,
        );
        assert.ok(outcomes.refused(), String(outcomes));
      },
    );
  },
});
