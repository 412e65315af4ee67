/**
 * Hostile paths over the wire, beyond `_server/path_jail_test.ts`: percent and
 * Unicode look-alikes of `..`, mixed separators, trailing slashes, device
 * names, symbolic link chains out of the root, invalid (overlong) UTF-8 as
 * raw bytes, depth bombs, and a folder swapped for a link out of the root
 * while requests run. A canary file beside the root must never be read.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FRAME_TYPES } from "../protocol.ts";
import { RawClient, sha256, treeNames, withServer } from "./_util/server.ts";

/** Name, and the code a GET, STAT and LIST of it must get. */
const HOSTILE_NAMES: [string, "FORBIDDEN" | "NOT_FOUND" | "TOO_LARGE"][] = [
  // Percent-encoding is not decoded: these are literal names in the root.
  ["%2e%2e%2fcanary.txt", "NOT_FOUND"],
  ["%2E%2E/canary.txt", "NOT_FOUND"],
  ["..%5ccanary.txt", "NOT_FOUND"],
  ["..%c0%afcanary.txt", "NOT_FOUND"],
  ["%252e%252e/canary.txt", "NOT_FOUND"],
  ["..;/canary.txt", "NOT_FOUND"],
  // Unicode look-alikes of dots and slashes are ordinary characters.
  ["\u2025/canary.txt", "NOT_FOUND"], // two-dot leader
  ["\u2026/canary.txt", "NOT_FOUND"], // ellipsis
  ["..\u2215canary.txt", "NOT_FOUND"], // division slash
  ["..\uff0fcanary.txt", "NOT_FOUND"], // fullwidth solidus
  ["..\u200b/canary.txt", "NOT_FOUND"], // zero-width space after ..
  ["\u202e..", "NOT_FOUND"], // right-to-left override
  // Raw dot segments, leading and trailing slashes.
  ["/..", "FORBIDDEN"],
  ["../../", "FORBIDDEN"],
  ["../", "FORBIDDEN"],
  ["sub/..", "FORBIDDEN"],
  ["sub/../", "FORBIDDEN"],
  ["sub/.", "FORBIDDEN"],
  ["sub/b.txt/", "FORBIDDEN"],
  ["/sub/b.txt", "FORBIDDEN"],
  ["sub/../../../../../../etc/passwd", "FORBIDDEN"],
  // Mixed separators and Windows forms.
  ["sub\\..\\../canary.txt", "FORBIDDEN"],
  ["sub/..\\..\\canary.txt", "FORBIDDEN"],
  ["\\\\?\\C:\\canary.txt", "FORBIDDEN"],
  ["\\\\server\\share\\canary.txt", "FORBIDDEN"],
  ["C:/canary.txt", "FORBIDDEN"],
  ["D:", "FORBIDDEN"],
  // Windows device names, any case, any extension, any folder.
  ["CON.txt", "FORBIDDEN"],
  ["aux.", "FORBIDDEN"],
  ["Nul.tar.gz", "FORBIDDEN"],
  ["sub/COM1", "FORBIDDEN"],
  ["lpt3.txt", "FORBIDDEN"],
  ["PRN.log", "FORBIDDEN"],
  // Control characters.
  ["sub/\u0000../canary.txt", "FORBIDDEN"],
  ["\r\n../canary.txt", "FORBIDDEN"],
  // Symbolic links out of the root, direct and through chains.
  ["hop1", "FORBIDDEN"], // hop1 -> hop2 -> sub/hop3 -> ../../canary.txt
  ["sub/hop3", "FORBIDDEN"],
  ["fa/canary.txt", "FORBIDDEN"], // fa -> fb (inside) -> .. (outside)
  ["fb/canary.txt", "FORBIDDEN"],
  ["fa", "FORBIDDEN"],
  ["sub/deep/up/up2/canary.txt", "FORBIDDEN"],
  // A depth bomb, refused before the file system is touched.
  ["a/".repeat(100) + "b", "TOO_LARGE"],
];

Deno.test("serve() refuses hostile names and never reads the canary", async () => {
  await withServer({
    allowUpload: true,
    files: { "a.txt": "inside", "sub/b.txt": "b", "sub/deep/x": "x" },
  }, async (t) => {
    await Deno.symlink("hop2", `${t.root}/hop1`);
    await Deno.symlink("sub/hop3", `${t.root}/hop2`);
    await Deno.symlink("../../canary.txt", `${t.root}/sub/hop3`);
    await Deno.symlink("fb", `${t.root}/fa`);
    await Deno.symlink("..", `${t.root}/fb`);
    await Deno.symlink("..", `${t.root}/sub/deep/up`);
    await Deno.symlink("../..", `${t.root}/sub/up2`);
    const baseBefore = await treeNames(t.base);
    assert.ok(HOSTILE_NAMES.length >= 30);

    let refused = 0;
    const created: string[] = [];
    const client = await RawClient.open(t.port, true);
    try {
      for (const [name, expected] of HOSTILE_NAMES) {
        const requests = [
          { type: "get", path: name, offset: 0 },
          { type: "stat", path: name },
          { type: "list", path: name, recursive: true },
        ] as const;
        for (const request of requests) {
          await client.send(request);
          const reply = await client.next();
          const what = `${request.type} ${JSON.stringify(name)}: ${
            JSON.stringify(reply)
          }`;
          assert.equal(reply?.type, "error", what);
          assert.equal((reply as { code: string }).code, expected, what);
        }
        await client.send({
          type: "put",
          path: name,
          size: 6,
          overwrite: true,
          resume: false,
        });
        const reply = await client.next();
        const what = `put ${JSON.stringify(name)}: ${JSON.stringify(reply)}`;
        if (reply?.type === "ready") {
          // Only a literal name inside the root may be created.
          assert.equal(expected, "NOT_FOUND", what);
          const content = new TextEncoder().encode("placed");
          await client.sendBytes(content);
          await client.send({ type: "hash", digest: sha256(content) });
          assert.equal((await client.next())?.type, "ok", what);
          assert.equal(await Deno.readTextFile(`${t.root}/${name}`), "placed");
          created.push(name);
        } else {
          assert.equal(reply?.type, "error", what);
          refused++;
        }
      }
    } finally {
      client.close();
    }
    assert.ok(!client.transcript.includes(t.canary), "canary leaked");
    assert.equal(await Deno.readTextFile(`${t.base}/canary.txt`), t.canary);
    assert.deepEqual(
      await treeNames(t.base),
      [...baseBefore, ...created.map((name) => `root/${name}`)].sort(),
    );
    // Every name that is not a literal file name in the root was refused.
    const escapes = HOSTILE_NAMES.filter(([, code]) => code !== "NOT_FOUND");
    assert.ok(refused >= escapes.length);
  });
});

/** Builds a GET frame whose path is `pathBytes`, whatever they are. */
function rawGetFrame(pathBytes: Uint8Array): Uint8Array {
  const payload = new Uint8Array(8 + 2 + pathBytes.length);
  const view = new DataView(payload.buffer);
  view.setUint16(8, pathBytes.length);
  payload.set(pathBytes, 10);
  const frame = new Uint8Array(5 + payload.length);
  frame[0] = FRAME_TYPES.get;
  new DataView(frame.buffer).setUint32(1, payload.length);
  frame.set(payload, 5);
  return frame;
}

/** Paths that are not UTF-8 (overlong forms of `.` and `/` among them). */
const INVALID_UTF8_PATHS: number[][] = [
  [0xc0, 0xae, 0xc0, 0xae, 0x2f, 0x63], // overlong "../c"
  [0x2e, 0x2e, 0xc0, 0xaf, 0x63], // "..", overlong "/", "c"
  [0xe0, 0x80, 0xae, 0xe0, 0x80, 0xae], // 3-byte overlong ".."
  [0xf0, 0x80, 0x80, 0xaf], // 4-byte overlong "/"
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate
  [0x2e, 0x2e, 0xff, 0x2f], // 0xff never appears in UTF-8
  [0xc3], // truncated sequence
];

Deno.test("serve() answers a path that is not UTF-8 (overlong dots and slashes) with BAD_REQUEST", async () => {
  await withServer({ files: { "a.txt": "a" } }, async (t) => {
    for (const bytes of INVALID_UTF8_PATHS) {
      const client = await RawClient.open(t.port, true);
      try {
        await client.sendBytes(rawGetFrame(new Uint8Array(bytes)));
        await client.expectError("BAD_REQUEST");
        assert.equal(await client.next(), null); // and the connection closes
      } finally {
        client.close();
      }
      assert.ok(!client.transcript.includes(t.canary));
    }
    // The server still serves.
    const client = await RawClient.open(t.port);
    try {
      const got = await client.get("a.txt");
      assert.equal(new TextDecoder().decode(got.bytes), "a");
    } finally {
      client.close();
    }
  });
});

const SWAP_ITERATIONS = 500;

Deno.test({
  name:
    "serve() never sends the canary when a folder is swapped for a link out of the root mid-request",
  ignore: Deno.build.os === "windows",
  async fn() {
    await withServer({ files: { "d/f.txt": "inside" } }, async (t) => {
      // base/outside/f.txt holds the canary; root/d.evil links to it.
      await Deno.mkdir(`${t.base}/outside`);
      await Deno.writeTextFile(`${t.base}/outside/f.txt`, t.canary);
      await Deno.symlink(`${t.base}/outside`, `${t.root}/d.evil`);
      let done = false;
      let swaps = 0;
      const swapper = (async () => {
        while (!done) {
          await Deno.rename(`${t.root}/d`, `${t.root}/d.real`);
          await Deno.rename(`${t.root}/d.evil`, `${t.root}/d`);
          await Deno.rename(`${t.root}/d`, `${t.root}/d.evil`);
          await Deno.rename(`${t.root}/d.real`, `${t.root}/d`);
          swaps++;
        }
      })();
      const outcomes = new Map<string, number>();
      const client = await RawClient.open(t.port, true);
      try {
        for (let i = 0; i < SWAP_ITERATIONS; i++) {
          await client.send({ type: "get", path: "d/f.txt", offset: 0 });
          const reply = await client.next();
          let outcome: string;
          if (reply?.type === "data") {
            const bytes = await client.readRaw(reply.size);
            const text = new TextDecoder().decode(bytes);
            assert.notEqual(text, t.canary, "canary sent");
            assert.equal(text, "inside");
            const trailer = await client.next();
            assert.equal(trailer?.type, "hash");
            outcome = "inside";
          } else {
            assert.equal(reply?.type, "error", JSON.stringify(reply));
            outcome = (reply as { code: string }).code;
            assert.ok(
              ["NOT_FOUND", "FORBIDDEN", "CHANGED"].includes(outcome),
              outcome,
            );
          }
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      } finally {
        done = true;
        await swapper;
        client.close();
      }
      assert.ok(!client.transcript.includes(t.canary), "canary leaked");
      assert.ok(swaps > 0);
      console.log(
        `swap race: ${SWAP_ITERATIONS} GETs during ${swaps} swaps: ${
          [...outcomes].map(([k, v]) => `${k} ${v}`).join(", ")
        }`,
      );
      // The race really ran: some requests met the link and were refused.
      assert.ok((outcomes.get("FORBIDDEN") ?? 0) > 0, [...outcomes].join());
    });
  },
});
