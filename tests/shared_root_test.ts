/**
 * Two servers over one folder, as behind a load balancer: racing uploads of
 * one path, transfers cut on one server and resumed on the other, and each
 * server's hash cache when the other changes a file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FerryError } from "../client.ts";
import {
  type FerryServer,
  serve,
  type ServeOptions,
  type ServerLogEvent,
} from "../server.ts";
import { attempt } from "./_util/client.ts";
import { startCutProxy } from "./_util/cut_proxy.ts";
import { waitUntil } from "./_util/faults.ts";
import { RawClient, sha256, testBytes } from "./_util/server.ts";
import {
  bytesEqual,
  runScript,
  SERVER_SCRIPT,
  withTempDir,
} from "./_util/util.ts";

const MIB = 1024 * 1024;

/** A server of the pair, with its log. */
interface Instance {
  port: number;
  logs: ServerLogEvent[];
}

/** Runs `fn` with two servers over `<dir>/root`, then stops both. */
async function withTwoServers(
  options: ServeOptions,
  fn: (
    t: { dir: string; root: string; a: Instance; b: Instance },
  ) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const root = `${dir}/root`;
    await Deno.mkdir(root);
    const controller = new AbortController();
    const servers: FerryServer[] = [];
    const instances: Instance[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const logs: ServerLogEvent[] = [];
        const server = await serve({
          root,
          port: 0,
          allowUpload: true,
          ...options,
          signal: controller.signal,
          onLog: (event) => logs.push(event),
        });
        servers.push(server);
        instances.push({ port: server.addr.port, logs });
      }
      await fn({ dir, root, a: instances[0], b: instances[1] });
    } finally {
      controller.abort();
      await Promise.all(servers.map((server) => server.finished));
    }
  });
}

async function names(folder: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(folder)) found.push(entry.name);
  return found.sort();
}

Deno.test("two servers over one folder: racing uploads of one path end as exactly one of them, with no leftovers", async () => {
  await withTwoServers({}, async ({ dir, root, a, b }) => {
    const size = 4 * MIB;
    const mtime = new Date(1_700_000_000_000);
    const sources = [
      testBytes(size, 1),
      testBytes(size, 2),
      testBytes(size - 1, 3),
    ];
    for (const [i, bytes] of sources.entries()) {
      await Deno.writeFile(`${dir}/local${i}`, bytes);
      // Same size and time: the same part name, so the lease decides.
      await Deno.utime(`${dir}/local${i}`, mtime, mtime);
    }
    const pairs: [number, number][] = [[0, 1], [1, 0], [0, 2]];
    for (const [round, [x, y]] of pairs.entries()) {
      const remote = `race${round}.bin`;
      const outcomes = await Promise.all([
        attempt(
          a.port,
          (c) => c.put(`${dir}/local${x}`, remote, { overwrite: true }),
        ),
        attempt(
          b.port,
          (c) => c.put(`${dir}/local${y}`, remote, { overwrite: true }),
        ),
      ]);
      for (const outcome of outcomes) {
        assert(!(outcome instanceof FerryError), `round ${round}: ${outcome}`);
      }
      const placed = await Deno.readFile(`${root}/${remote}`);
      assert(
        bytesEqual(placed, sources[x]) || bytesEqual(placed, sources[y]),
        `round ${round}: the file is neither upload`,
      );
    }
    assert.deepEqual(await names(root), [
      "race0.bin",
      "race1.bin",
      "race2.bin",
    ]);
    // Without overwrite, one wins and the other hears EXISTS.
    const outcomes = await Promise.all([
      attempt(a.port, (c) => c.put(`${dir}/local0`, "once.bin")),
      attempt(b.port, (c) => c.put(`${dir}/local1`, "once.bin")),
    ]);
    const failed = outcomes.filter((o) => o instanceof FerryError);
    assert.equal(failed.length, 1, String(outcomes));
    assert.equal((failed[0] as FerryError).code, "EXISTS");
    const winner = outcomes.findIndex((o) => !(o instanceof FerryError));
    assert(
      bytesEqual(await Deno.readFile(`${root}/once.bin`), sources[winner]),
    );
    assert.deepEqual(await names(root), [
      "once.bin",
      "race0.bin",
      "race1.bin",
      "race2.bin",
    ]);
  });
});

Deno.test("two servers over one folder: an upload cut on one continues on the other", async () => {
  await withTwoServers({}, async ({ dir, root, a, b }) => {
    const content = testBytes(3 * MIB, 7);
    await Deno.writeFile(`${dir}/local`, content);
    {
      await using proxy = startCutProxy(a.port, "toServer", () => MIB);
      const cut = await attempt(
        proxy.port,
        (c) => c.put(`${dir}/local`, "up.bin"),
      );
      assert(
        cut instanceof FerryError && cut.code === "CONNECTION",
        String(cut),
      );
    }
    const result = await attempt(
      b.port,
      (c) => c.put(`${dir}/local`, "up.bin"),
    );
    assert(!(result instanceof FerryError), String(result));
    assert(result.resumedFrom! > 0, "started over instead of resuming");
    assert(bytesEqual(await Deno.readFile(`${root}/up.bin`), content));
    assert.deepEqual(await names(root), ["up.bin"]);
  });
});

Deno.test("two servers over one folder: a download cut on one continues on the other", async () => {
  await withTwoServers({}, async ({ dir, root, a, b }) => {
    const content = testBytes(3 * MIB, 9);
    await Deno.writeFile(`${root}/down.bin`, content);
    {
      await using proxy = startCutProxy(a.port, "toClient", () => MIB);
      const cut = await attempt(
        proxy.port,
        (c) => c.get("down.bin", `${dir}/down.bin`),
      );
      assert(
        cut instanceof FerryError && cut.code === "CONNECTION",
        String(cut),
      );
    }
    const result = await attempt(
      b.port,
      (c) => c.get("down.bin", `${dir}/down.bin`),
    );
    assert(!(result instanceof FerryError), String(result));
    assert(result.resumedFrom! > 0, "started over instead of resuming");
    assert(bytesEqual(await Deno.readFile(`${dir}/down.bin`), content));
  });
});

Deno.test("two servers over one folder: a server's hash cache misses a file the other replaced with the same size and time", async () => {
  await withTwoServers({}, async ({ dir, a, b }) => {
    const mtime = new Date(1_700_000_000_000);
    const first = testBytes(MIB, 11);
    const second = testBytes(MIB, 12);
    await Deno.writeFile(`${dir}/first`, first);
    await Deno.writeFile(`${dir}/second`, second);
    await Deno.utime(`${dir}/first`, mtime, mtime);
    await Deno.utime(`${dir}/second`, mtime, mtime);
    // Uploaded through A, which caches the digest of what it placed...
    const put = await attempt(a.port, (c) => c.put(`${dir}/first`, "f.bin"));
    assert(!(put instanceof FerryError), String(put));
    const cachedGet = await attempt(
      a.port,
      (c) => c.get("f.bin", `${dir}/got1`),
    );
    assert(!(cachedGet instanceof FerryError), String(cachedGet));
    assert.equal(a.logs.findLast((e) => e.request === "GET")?.cached, true);
    // ...then replaced through B: same size, same modification time.
    const replaced = await attempt(
      b.port,
      (c) => c.put(`${dir}/second`, "f.bin", { overwrite: true }),
    );
    assert(!(replaced instanceof FerryError), String(replaced));
    // A must not vouch for the old digest (the client checks it).
    const got = await attempt(a.port, (c) => c.get("f.bin", `${dir}/got2`));
    assert(!(got instanceof FerryError), String(got));
    assert(bytesEqual(await Deno.readFile(`${dir}/got2`), second));
    assert.notEqual(a.logs.findLast((e) => e.request === "GET")?.cached, true);
  });
});

Deno.test("server.ts refuses a --lease-timeout that is not a positive number of seconds", async () => {
  for (const bad of ["0", "1e999", "soon"]) {
    const result = await runScript(SERVER_SCRIPT, ["--lease-timeout", bad]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^ferry-server: bad --lease-timeout: /);
  }
});

Deno.test("two servers over one folder: a server never evicts a kept part that the other is writing", async () => {
  await withTwoServers({}, async ({ root, a, b }) => {
    const size = 300 * 1024;
    const content = testBytes(size, 21);
    const put = (mtime: number) => ({
      type: "put" as const,
      path: "p.bin",
      size,
      overwrite: false,
      resume: true,
      mtime,
    });
    // A cut upload on A: A keeps its part.
    const cut = await RawClient.open(a.port);
    await cut.send(put(1_000));
    await cut.expect("ready");
    await cut.sendBytes(content.subarray(0, 100 * 1024));
    cut.close();
    await waitUntil(() => a.logs.some((e) => e.request === "PUT"), "the cut");
    // The client resumes on B, which holds the part's lease while it writes.
    const resumed = await RawClient.open(b.port);
    try {
      await resumed.send(put(1_000));
      const { offset } = await resumed.expect("ready");
      assert.equal(offset, 100 * 1024);
      // Meanwhile another upload of the same path (another time) reaches A,
      // which would drop its older kept part: the one B is writing.
      const other = await RawClient.open(a.port);
      await other.send(put(2_000));
      await other.expect("ready");
      other.close();
      await waitUntil(
        () => a.logs.filter((e) => e.request === "PUT").length >= 2,
        "the second cut",
      );
      await resumed.sendBytes(content.subarray(offset));
      await resumed.send({ type: "hash", digest: sha256(content) });
      await resumed.expect("ok");
    } finally {
      resumed.close();
    }
    assert(bytesEqual(await Deno.readFile(`${root}/p.bin`), content));
  });
});
