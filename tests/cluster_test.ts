/**
 * The cluster demo under failure: 200 clients through HAProxy in front of
 * three ferry servers over one folder, one server killed with SIGKILL in
 * the middle, and every client completing byte-exact by running again.
 * Needs `haproxy` (`.ci/run` installs it); ignored, saying so, without it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { findHaproxy, startCluster } from "../bench/cluster.ts";
import { connect, FerryError } from "../client.ts";
import { testBytes } from "./_util/server.ts";
import { bytesEqual, spawnScript, withTempDir } from "./_util/util.ts";

const MIB = 1024 * 1024;
const CLIENTS = 200;
const UPLOADERS = 20;
const found = await findHaproxy(false);
const missing = "reason" in found ? found.reason : undefined;

Deno.test({
  name: missing === undefined
    ? "cluster: 200 clients through HAProxy complete byte-exact after a server is killed mid-transfer"
    : `cluster: 200 clients through HAProxy (ignored: ${missing})`,
  ignore: missing !== undefined,
  async fn() {
    await withTempDir(async (dir) => {
      const root = `${dir}/root`;
      const local = `${dir}/local`;
      await Deno.mkdir(root);
      await Deno.mkdir(local);
      const content = testBytes(MIB, 14);
      await Deno.writeFile(`${root}/big.bin`, content);
      const uploads = Array.from(
        { length: UPLOADERS },
        (_, i) => testBytes(MIB, 100 + i),
      );
      for (const [i, bytes] of uploads.entries()) {
        await Deno.writeFile(`${local}/up${i}.bin`, bytes);
      }
      await using cluster = await startCluster({
        root,
        servers: 3,
        allowUpload: true,
        leaseTimeoutSeconds: 1,
        // Every client here is 127.0.0.1: lift the per-address limit.
        maxConnectionsPerAddress: CLIENTS,
        haproxy: "program" in found ? found.program : undefined,
      });
      // Kill the first server once bytes flow (2% of them have moved).
      const total = CLIENTS * MIB;
      let moved = 0;
      let killed = false;
      const progress = new Map<number, number>();
      const onProgress = (client: number, done: number) => {
        moved += done - (progress.get(client) ?? 0);
        progress.set(client, done);
        if (!killed && moved >= total / 50) {
          killed = true;
          Deno.kill(cluster.servers[0].pid, "SIGKILL");
        }
      };
      const run = async (client: number): Promise<FerryError | undefined> => {
        try {
          await using session = await connect({ port: cluster.port });
          const options = {
            onProgress: (done: number) => onProgress(client, done),
          };
          if (client < UPLOADERS) {
            await session.put(
              `${local}/up${client}.bin`,
              `up${client}.bin`,
              options,
            );
          } else {
            await session.get("big.bin", `${local}/${client}.bin`, options);
          }
          return undefined;
        } catch (error) {
          if (error instanceof FerryError) return error;
          throw error;
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, i) => i);
      const first = await Promise.all(clients.map(run));
      assert(killed, "the transfers ended before a server could be killed");
      const cut = clients.filter((i) => first[i] !== undefined);
      assert(cut.length > 0, "killing a server cut no transfer");
      const codes = new Set(cut.map((i) => first[i]!.code));
      assert.deepEqual([...codes], ["CONNECTION"], "failures other than cuts");
      // Every client that failed runs again (resuming) until it succeeds.
      let pending = cut;
      for (let round = 0; round < 5 && pending.length > 0; round++) {
        const outcomes = await Promise.all(pending.map(run));
        pending = pending.filter((_, k) => outcomes[k] !== undefined);
      }
      assert.deepEqual(pending, [], "clients that never completed");
      for (const i of clients) {
        const ok = i < UPLOADERS
          ? bytesEqual(await Deno.readFile(`${root}/up${i}.bin`), uploads[i])
          : bytesEqual(await Deno.readFile(`${local}/${i}.bin`), content);
        assert(ok, `client ${i} is not byte-exact`);
      }
      const left: string[] = [];
      for await (const entry of Deno.readDir(root)) {
        if (entry.name.startsWith(".ferry-")) left.push(entry.name);
      }
      assert.deepEqual(left, [], "parts or leases left behind");
      console.log(
        `cluster: ${cut.length} of ${CLIENTS} transfers (${
          cut.filter((i) => i < UPLOADERS).length
        } uploads) cut by the SIGKILL, all completed on retry`,
      );
    });
  },
});

Deno.test({
  name: missing === undefined
    ? "bench/cluster.ts prints where HAProxy listens, serves through it, and stops everything on SIGINT"
    : `bench/cluster.ts prints its address and stops on SIGINT (ignored: ${missing})`,
  ignore: missing !== undefined,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/hello.txt`, "hello\n");
      const script = new URL("../bench/cluster.ts", import.meta.url).pathname;
      const run = await spawnScript(script, [
        "--root",
        dir,
        "--port",
        "0",
        "--servers",
        "2",
        "--no-install",
      ]);
      const match = run.head.match(
        /^Listening on tcp:\/\/127\.0\.0\.1:(\d+) \(HAProxy in front of 2 ferry servers on ports (\d+), (\d+)\)\n/,
      );
      try {
        assert(match, run.head);
        await using client = await connect({ port: Number(match[1]) });
        await client.get("hello.txt", `${dir}/got.txt`);
        assert.equal(await Deno.readTextFile(`${dir}/got.txt`), "hello\n");
      } finally {
        run.child.kill("SIGINT");
      }
      const { code } = await run.finish();
      assert.equal(code, 0);
      // HAProxy and both servers are gone: nothing listens on their ports.
      for (const port of match!.slice(1).map(Number)) {
        await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
      }
    });
  },
});
