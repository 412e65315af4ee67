/**
 * Strict mode (`_server/dir_handle.ts`) against a local user who swaps a
 * folder inside the root for a symbolic link out of it while MKDIR and PUT
 * requests run: a separate swapper process renames `root/d` and a link
 * `root/d.evil` -> `outside` back and forth, and nothing may appear or
 * change outside the root.
 *
 * @module
 */

import assert from "node:assert/strict";
import { strictLibc } from "../_server/dir_handle.ts";
import { RawClient, withServer } from "./_util/server.ts";

const REQUESTS = 150;

/**
 * The swapper: four renames per swap, so it always ends with `d` the real
 * folder; stops when `stop` exists (checked every 64 swaps) or after 20 s.
 * Prints how many swaps it made. A folder MKDIR made at `d` while the real
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
  if (swaps % 64 === 0) {
    if (performance.now() > end) break;
    try { Deno.statSync(stop); break; } catch { /* go on */ }
  }
}
console.log(swaps);
`;

const strict = strictLibc() !== undefined;

Deno.test({
  name: strict
    ? "serve() in strict mode makes nothing outside the root when a folder is swapped for a link during MKDIR and PUT"
    : "serve() in strict mode makes nothing outside the root when a folder is swapped for a link during MKDIR and PUT (ignored: needs --allow-ffi on Linux)",
  ignore: !strict,
  async fn() {
    await withServer(
      { allowUpload: true, files: { "d/f.txt": "inside" } },
      async (t) => {
        const outside = `${t.base}/outside`;
        await Deno.mkdir(outside);
        await Deno.writeTextFile(`${outside}/f.txt`, t.canary);
        const canaryBefore = await Deno.stat(`${outside}/f.txt`);
        await Deno.symlink(outside, `${t.root}/d.evil`);
        const stop = `${t.base}/stop`;
        const swapper = new Deno.Command(Deno.execPath(), {
          args: [
            "eval",
            "--quiet",
            SWAPPER,
            t.root,
            stop,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const outcomes = new Map<string, number>();
        const count = (what: string) =>
          outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
        const mtime = Date.UTC(2001, 0, 1);
        const client = await RawClient.open(t.port);
        let result: Deno.CommandOutput;
        try {
          const bytes = new TextEncoder().encode("uploaded");
          for (let i = 0; i < REQUESTS; i++) {
            await client.send({ type: "mkdir", path: `d/m${i}/x`, mtime });
            const made = await client.next();
            count(`MKDIR ${made?.type === "error" ? made.code : made?.type}`);
            const put = await client.put(
              i % 2 === 0 ? "d/f.txt" : `d/new${i}`,
              bytes,
              { overwrite: i % 2 === 0, mtime },
            );
            count(`PUT ${put?.type === "error" ? put.code : put?.type}`);
          }
        } finally {
          client.close();
          await Deno.writeTextFile(stop, "");
          result = await swapper.output();
        }
        assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
        const swaps = Number(new TextDecoder().decode(result.stdout).trim());
        console.log(
          `swap race: ${REQUESTS} MKDIR + ${REQUESTS} PUT during ${swaps} swaps: ${
            [...outcomes].map(([k, v]) => `${k} ${v}`).join(", ")
          }`,
        );
        const names: string[] = [];
        for await (const entry of Deno.readDir(outside)) {
          names.push(entry.name);
        }
        assert.deepEqual(names, ["f.txt"], "something was made outside");
        assert.equal(await Deno.readTextFile(`${outside}/f.txt`), t.canary);
        const canaryAfter = await Deno.stat(`${outside}/f.txt`);
        assert.equal(canaryAfter.ino, canaryBefore.ino);
        assert.equal(
          canaryAfter.mtime?.getTime(),
          canaryBefore.mtime?.getTime(),
        );
        // The race really ran: some requests met the link and were refused.
        assert.ok(swaps > 0);
        assert.ok(
          [...outcomes.keys()].some((k) => /^(MKDIR|PUT) FORBIDDEN/.test(k)),
          [...outcomes].join(),
        );
      },
    );
  },
});
