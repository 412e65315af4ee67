import assert from "node:assert/strict";
import { runClient } from "./_util/client.ts";
import { withServer } from "./_util/server.ts";
import { startServerChild } from "./_util/faults.ts";
import {
  CLIENT_SCRIPT,
  digestHex,
  hasTerminalScript,
  runScript,
  SERVER_SCRIPT,
  sha256Hex,
  terminalCommand,
} from "./_util/util.ts";

Deno.test("client.ts get -r --json prints one parsable record per file, failures included", async () => {
  let root = "";
  await withServer({
    files: { "d/a.txt": "alpha", "d/sub/b.txt": "beta", "d/gone.txt": "x" },
    onLog(event) {
      if (event.request === "LIST") Deno.removeSync(`${root}/d/gone.txt`);
    },
  }, async (t) => {
    root = t.root;
    const { code, stdout, stderr } = await runClient(
      [
        "--port",
        String(t.port),
        "get",
        "-r",
        "d",
        "-o",
        `${t.base}/out`,
        "--json",
      ],
    );
    assert.equal(code, 1);
    const records = stdout.trim().split("\n").map((line) => JSON.parse(line));
    const byName = new Map(records.map((record) => [record.name, record]));
    assert.equal(records.length, 3);
    assert.deepEqual(
      Object.keys(byName.get("d/a.txt")).sort(),
      [
        "algorithm",
        "bytes",
        "digest",
        "kind",
        "name",
        "seconds",
        "sha256",
        "status",
      ],
    );
    assert.equal(byName.get("d/a.txt").status, "ok");
    assert.equal(byName.get("d/a.txt").bytes, 5);
    assert.equal(byName.get("d/a.txt").algorithm, "xxh3-128");
    assert.equal(byName.get("d/a.txt").digest, await digestHex("alpha"));
    assert.equal(byName.get("d/a.txt").sha256, null);
    assert.equal(typeof byName.get("d/a.txt").seconds, "number");
    assert.equal(byName.get("d/sub/b.txt").digest, await digestHex("beta"));
    assert.deepEqual(byName.get("d/gone.txt"), {
      name: "d/gone.txt",
      kind: "file",
      bytes: 0,
      algorithm: null,
      digest: null,
      sha256: null,
      seconds: null,
      status: "failed",
      error: { code: "NOT_FOUND", message: "Not found: d/gone.txt" },
    });
    assert.match(stderr, /^ferry: get -r d: 1 of 3 files failed$/m);
  });
});

Deno.test("client.ts get and put --json print one record for a single file", async () => {
  await withServer(
    { allowUpload: true, files: { "a.txt": "alpha" } },
    async (t) => {
      const get = await runClient(
        [
          "--port",
          String(t.port),
          "get",
          "a.txt",
          "-o",
          `${t.base}/a.txt`,
          "--json",
        ],
      );
      assert.equal(get.code, 0);
      const record = JSON.parse(get.stdout);
      assert.equal(record.name, "a.txt");
      assert.equal(record.status, "ok");
      assert.equal(record.algorithm, "xxh3-128");
      assert.equal(record.digest, await digestHex("alpha"));
      const put = await runClient(
        [
          "--port",
          String(t.port),
          "put",
          `${t.base}/a.txt`,
          "b.txt",
          "--json",
          "--sha256",
        ],
      );
      assert.equal(put.code, 0);
      const putRecord = JSON.parse(put.stdout);
      assert.equal(putRecord.algorithm, "sha256");
      assert.equal(putRecord.digest, sha256Hex("alpha"));
      assert.equal(putRecord.sha256, sha256Hex("alpha"));
      const missing = await runClient(
        [
          "--port",
          String(t.port),
          "get",
          "nope",
          "-o",
          `${t.base}/n`,
          "--json",
        ],
      );
      assert.equal(missing.code, 1);
      const failed = JSON.parse(missing.stdout);
      assert.equal(failed.status, "failed");
      assert.equal(failed.error.code, "NOT_FOUND");
    },
  );
});

/** Starts server.ts, runs `fn` with its port, stops it; returns its stderr. */
async function withServerCli(
  args: string[],
  root: string,
  fn: (port: number) => Promise<void>,
): Promise<string> {
  const server = await startServerChild(["--root", root, ...args]);
  try {
    await fn(server.port);
  } finally {
    server.child.kill("SIGTERM");
  }
  return (await server.output()).stderr;
}

Deno.test("server.ts --log json prints one JSON object per request", async () => {
  const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.writeTextFile(`${base}/a.txt`, "alpha");
    const stderr = await withServerCli(
      ["--log", "json"],
      base,
      async (port) => {
        const result = await runClient(
          [
            "--port",
            String(port),
            "get",
            "a.txt",
            "nope",
            "-o",
            base,
            "--force",
          ],
        );
        assert.equal(result.code, 1);
      },
    );
    const events = stderr.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(
      events.map((
        event,
      ) => [event.request, event.path, event.bytes, event.result]),
      [["GET", "a.txt", 5, "ok"], ["GET", "nope", 0, "NOT_FOUND"]],
    );
    for (const event of events) {
      assert.deepEqual(Object.keys(event), [
        "time",
        "peer",
        "protocol",
        "request",
        "path",
        "bytes",
        "result",
        "durationMs",
      ]);
      assert.ok(!Number.isNaN(Date.parse(event.time)));
      assert.match(event.peer, /^127\.0\.0\.1:\d+$/);
      assert.equal(event.protocol, "ferry");
      assert.equal(typeof event.durationMs, "number");
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("server.ts logs text lines by default and nothing with --quiet", async () => {
  const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.writeTextFile(`${base}/a b.txt`, "alpha");
    const get = (port: number) =>
      runClient(["--port", String(port), "ls"]).then((r) =>
        assert.equal(r.code, 0)
      );
    const text = await withServerCli([], base, get);
    assert.match(
      text.trim(),
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1:\d+ ferry LIST "" 0 ok \d+\.\dms$/,
    );
    assert.equal(await withServerCli(["--quiet"], base, get), "");
    const bad = await runScript(SERVER_SCRIPT, ["--log", "xml"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^ferry-server: bad --log format: xml/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

const HAS_SCRIPT = await hasTerminalScript();

/** Runs client.ts under `script`, so that its stderr is a terminal. */
async function runClientOnTerminal(
  args: string[],
): Promise<{ code: number; output: string; seconds: number }> {
  const start = performance.now();
  const { code, stdout } = await terminalCommand(CLIENT_SCRIPT, args).output();
  return {
    code,
    output: new TextDecoder().decode(stdout),
    seconds: (performance.now() - start) / 1000,
  };
}

Deno.test({
  name:
    "client.ts get draws a progress line on a terminal, clears it, and draws none with --quiet",
  ignore: !HAS_SCRIPT,
  fn: async () => {
    const big = new Uint8Array(24 * 1024 * 1024).fill(1);
    await withServer({ files: { "big.bin": big } }, async (t) => {
      const shown = await runClientOnTerminal(
        ["--port", String(t.port), "get", "big.bin", "-o", `${t.base}/a.bin`],
      );
      assert.equal(shown.code, 0);
      const clears = shown.output.split("\r\x1b[2K").length - 1;
      const draws = shown.output.split("\r\x1b[2Kbig.bin ").length - 1;
      assert.ok(draws >= 1, JSON.stringify(shown.output));
      assert.equal(clears, draws + 1, "one final clear after the draws");
      assert.ok(draws <= 1 + Math.ceil(shown.seconds * 10));
      const result = shown.output.split("\r\x1b[2K").at(-1)!;
      assert.match(result, /a\.bin: 25165824 bytes/);
      const quiet = await runClientOnTerminal(
        [
          "--port",
          String(t.port),
          "get",
          "big.bin",
          "-o",
          `${t.base}/b.bin`,
          "-q",
        ],
      );
      assert.equal(quiet.code, 0);
      assert.ok(!quiet.output.includes("\x1b"), JSON.stringify(quiet.output));
    });
  },
});

Deno.test("client.ts get -o - --json is a usage error: stdout carries only the file", async () => {
  const result = await runClient(["get", "a.txt", "-o", "-", "--json"]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^ferry: --json cannot be combined with -o -\n/);
});
