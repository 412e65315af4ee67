/**
 * Faults injected for real: client and server processes killed with
 * SIGKILL mid-transfer, a file size limit that makes the server's writes
 * fail, and a proxy that cuts connections at random points.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect } from "../client.ts";
import { FerryError } from "../errors.ts";
import { testBytes, treeNames, withServer } from "./_util/server.ts";
import { runClient } from "./_util/client.ts";
import {
  sizeOf,
  startProxy,
  startServerChild,
  waitUntil,
} from "./_util/faults.ts";
import {
  CLIENT_SCRIPT,
  digestHex,
  Prng,
  scriptCommand,
  sha256Hex,
} from "./_util/util.ts";

const MIB = 1024 * 1024;
const BIG = 64 * MIB;
const IS_POSIX = Deno.build.os !== "windows";

/** Whether `part` is a prefix of `whole`. */
function isPrefix(part: Uint8Array, whole: Uint8Array): boolean {
  if (part.length > whole.length) return false;
  for (let i = 0; i < part.length; i++) if (part[i] !== whole[i]) return false;
  return true;
}

function spawnClient(args: string[], cwd: string): Deno.ChildProcess {
  return scriptCommand(CLIENT_SCRIPT, args, { cwd }).spawn();
}

async function killed(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
}

Deno.test({
  name:
    "client.ts killed by SIGKILL mid-download leaves no corrupt file, and the next get resumes",
  ignore: !IS_POSIX,
  async fn() {
    const content = testBytes(BIG, 31);
    await withServer({ files: { "big.bin": content } }, async (t) => {
      const local = await Deno.makeTempDir({ prefix: "ferry_test_" });
      // The proxy lets 8 MiB through, then holds: the kill lands mid-way.
      await using proxy = startProxy(t.port, () => ({
        holdToClientAfter: 8 * MIB,
      }));
      try {
        const dest = `${local}/big.bin`;
        const child = spawnClient(
          ["--port", String(proxy.port), "get", "big.bin", "-o", dest],
          local,
        );
        await waitUntil(
          async () => (await sizeOf(`${dest}.part`)) >= 4 * MIB,
          "the client's .part to pass 4 MiB",
        );
        await killed(child);
        const cut = await t.waitForLog((e) => e.request === "GET");
        assert.notEqual(cut.result, "ok");
        // No corrupt destination: DEST absent, DEST.part a true prefix.
        assert.equal(await sizeOf(dest), -1);
        const part = await Deno.readFile(`${dest}.part`);
        assert.ok(part.length >= 4 * MIB && part.length < BIG);
        assert.ok(isPrefix(part, content), ".part is not a prefix");

        const again = await runClient(
          ["--port", String(t.port), "get", "big.bin", "-o", dest],
          { cwd: local },
        );
        assert.equal(again.code, 0, again.stderr);
        assert.equal(sha256Hex(await Deno.readFile(dest)), sha256Hex(content));
        assert.equal(await sizeOf(`${dest}.part`), -1);
        const gets = t.logs.filter((e) => e.request === "GET");
        assert.equal(gets.at(-1)?.result, "ok");
        // It resumed: fewer bytes than the file crossed the second time.
        assert.ok(
          gets.at(-1)!.bytes <= BIG - part.length,
          `sent ${gets.at(-1)!.bytes} bytes again`,
        );
      } finally {
        await Deno.remove(local, { recursive: true });
      }
    });
  },
});

Deno.test({
  name:
    "client.ts killed by SIGKILL mid-upload leaves no file on the server, and the next put resumes",
  ignore: !IS_POSIX,
  async fn() {
    const content = testBytes(BIG, 37);
    await withServer({ allowUpload: true }, async (t) => {
      const local = await Deno.makeTempDir({ prefix: "ferry_test_" });
      await using proxy = startProxy(t.port, () => ({
        holdToServerAfter: 8 * MIB,
      }));
      try {
        await Deno.writeFile(`${local}/big.bin`, content);
        const child = spawnClient(
          ["--port", String(proxy.port), "put", "big.bin", "big.bin"],
          local,
        );
        let temp = "";
        await waitUntil(async () => {
          for await (const entry of Deno.readDir(t.root)) {
            if (
              entry.name.startsWith(".ferry-") &&
              (await sizeOf(`${t.root}/${entry.name}`)) >= 4 * MIB
            ) {
              temp = entry.name;
              return true;
            }
          }
          return false;
        }, "the server's temporary file to pass 4 MiB");
        await killed(child);
        const cut = await t.waitForLog((e) => e.request === "PUT");
        assert.notEqual(cut.result, "ok");
        // No file under the real name; at most a hidden part, never listed.
        const left = await treeNames(t.root);
        assert.ok(!left.includes("big.bin"), left.join());
        assert.ok(
          left.every((name) => name.startsWith(".ferry-")),
          left.join(),
        );
        {
          await using client = await connect({ port: t.port });
          assert.deepEqual(await client.list(), []);
        }
        assert.ok(temp !== "");

        const again = await runClient(
          ["--port", String(t.port), "put", "big.bin", "big.bin"],
          { cwd: local },
        );
        assert.equal(again.code, 0, again.stderr);
        assert.equal(
          sha256Hex(await Deno.readFile(`${t.root}/big.bin`)),
          sha256Hex(content),
        );
        assert.deepEqual(await treeNames(t.root), ["big.bin"]);
        const puts = t.logs.filter((e) => e.request === "PUT");
        assert.equal(puts.at(-1)?.result, "ok");
        assert.ok(puts.at(-1)!.bytes < BIG, `sent ${puts.at(-1)!.bytes} again`);
      } finally {
        await Deno.remove(local, { recursive: true });
      }
    });
  },
});

Deno.test({
  name:
    "FerryClient get() reports CONNECTION and keeps DEST.part when the server is killed mid-transfer",
  ignore: !IS_POSIX,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
    const local = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      const content = testBytes(BIG, 41);
      await Deno.writeFile(`${root}/big.bin`, content);
      const server = await startServerChild(["--root", root]);
      const dest = `${local}/big.bin`;
      let kills = 0;
      try {
        await using client = await connect({ port: server.port });
        const error = await client.get("big.bin", dest, {
          onProgress(done) {
            // Once the receiver has seen 4 MiB (of 64), the server dies.
            if (done >= 4 * MIB && kills === 0) {
              kills++;
              server.child.kill("SIGKILL");
            }
          },
        }).then(() => undefined, (error) => error);
        assert.ok(error instanceof FerryError, String(error));
        assert.equal(error.code, "CONNECTION");
        assert.match(error.message, /closed|reset|connection/i);
      } finally {
        if (kills === 0) server.child.kill("SIGKILL");
        await server.output();
      }
      assert.equal(kills, 1);
      assert.equal(await sizeOf(dest), -1);
      const part = await Deno.readFile(`${dest}.part`);
      assert.ok(part.length >= 4 * MIB && part.length < BIG, `${part.length}`);
      assert.ok(isPrefix(part, content), ".part is not a prefix");
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(local, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "server.ts answers a write error mid-upload (file size limit) with INTERNAL, removes the temporary file and keeps serving",
  ignore: !IS_POSIX,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
    const local = await Deno.makeTempDir({ prefix: "ferry_test_" });
    try {
      await Deno.writeFile(`${local}/big.bin`, testBytes(8 * MIB, 43));
      await Deno.writeFile(`${local}/small.bin`, testBytes(1000, 47));
      // RLIMIT_FSIZE of 2 MiB: a write past it fails with EFBIG. SIGXFSZ is
      // ignored (an ignored signal stays ignored across exec), so the
      // server sees the error instead of being killed by the signal.
      const server = await startServerChild(
        ["--root", root, "--allow-upload"],
        { shell: "trap '' XFSZ; ulimit -f 2048" },
      );
      try {
        await using client = await connect({ port: server.port });
        const error = await client.put(`${local}/big.bin`, "big.bin")
          .then(() => undefined, (error) => error);
        assert.ok(error instanceof FerryError, String(error));
        assert.equal(error.code, "INTERNAL");
        assert.match(error.message, /^Write failed: file too large/);
        assert.deepEqual(await treeNames(root), []);
        // The same session, and the server, go on.
        await client.put(`${local}/small.bin`, "small.bin");
        assert.deepEqual(
          await Deno.readFile(`${root}/small.bin`),
          await Deno.readFile(`${local}/small.bin`),
        );
      } finally {
        server.child.kill("SIGTERM");
      }
      const { code, stderr } = await server.output();
      assert.equal(code, 0);
      assert.match(stderr, / ferry PUT "big\.bin" \d+ INTERNAL /);
      assert.match(stderr, / ferry PUT "small\.bin" 1000 ok /);
      assert.deepEqual(await treeNames(root), ["small.bin"]);
    } finally {
      await Deno.remove(root, { recursive: true });
      await Deno.remove(local, { recursive: true });
    }
  },
});

const CUT_SEED = 0xc07;
const CUT_GETS = 200;

Deno.test(`FerryClient get() through a proxy that cuts at random points: ${CUT_GETS} gets, each byte-exact or leaving no file`, async () => {
  const rng = new Prng(CUT_SEED);
  const sizes = [0, 1, 100, 4096, 65_536, 300_001, MIB + 7, 2 * MIB];
  const files: Record<string, Uint8Array> = {};
  sizes.forEach((size, i) => files[`f${i}.bin`] = testBytes(size, 100 + i));
  const names = Object.keys(files);
  const plans = Array.from({ length: CUT_GETS }, () => {
    const name = rng.pick(names);
    // The whole exchange is the file plus about 200 bytes of frames.
    const cutAfter = rng.int(Math.ceil((files[name].length + 200) * 1.4));
    return { name, cutAfter };
  });
  await withServer({ files }, async (t) => {
    const local = await Deno.makeTempDir({ prefix: "ferry_test_" });
    await using proxy = startProxy(
      t.port,
      (i) => ({ cutAfter: plans[i].cutAfter }),
    );
    let completed = 0;
    let failed = 0;
    try {
      for (let i = 0; i < CUT_GETS; i++) {
        const { name } = plans[i];
        const dest = `${local}/${i}-${name}`;
        try {
          await using client = await connect({ port: proxy.port });
          const result = await client.get(name, dest);
          assert.equal(result.digest, await digestHex(files[name]));
          assert.equal(
            sha256Hex(await Deno.readFile(dest)),
            sha256Hex(files[name]),
          );
          completed++;
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          assert.ok(error instanceof FerryError, String(error));
          assert.equal(await sizeOf(dest), -1, `${dest} kept after a cut`);
          failed++;
        }
      }
      assert.equal(proxy.connections, CUT_GETS);
      assert.ok(completed > 20 && failed > 20, `${completed} / ${failed}`);
      console.log(
        `random cuts: ${CUT_GETS} gets, ${completed} completed byte-exact, ${failed} cut (no file kept)`,
      );
      // The server took no harm.
      await using client = await connect({ port: t.port });
      const result = await client.get("f7.bin", `${local}/final.bin`);
      assert.equal(result.digest, await digestHex(files["f7.bin"]));
    } finally {
      await Deno.remove(local, { recursive: true });
    }
  });
});
