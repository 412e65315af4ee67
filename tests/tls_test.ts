import assert from "node:assert/strict";
import {
  hasOpenssl,
  makeTestPki,
  startServerProcess,
  type TestPki,
} from "./_util/security.ts";
import { withServer } from "./_util/server.ts";
import { connect } from "../client.ts";
import {
  CLIENT_SCRIPT,
  randomBytes,
  rejectsWith,
  runScript,
  SERVER_SCRIPT,
  withTempDir,
} from "./_util/util.ts";

const OPENSSL = await hasOpenssl();
const SKIPPED = OPENSSL ? "" : " (skipped: openssl is missing)";

/** Runs `fn` with a fresh throwaway PKI in a temp folder. */
function withPki(fn: (pki: TestPki) => Promise<void>): Promise<void> {
  return withTempDir(async (dir) => await fn(await makeTestPki(dir)));
}

Deno.test({
  name: `serve() with cert and key lists, gets and puts over TLS${SKIPPED}`,
  ignore: !OPENSSL,
  async fn() {
    await withPki(async (pki) => {
      const content = randomBytes(300_000);
      await withServer(
        {
          cert: pki.certPem,
          key: pki.keyPem,
          allowUpload: true,
          files: { "data.bin": content },
        },
        async ({ port, root }) => {
          const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
          try {
            for (const hostname of ["127.0.0.1", "localhost"]) {
              await using client = await connect({
                hostname,
                port,
                caCerts: [pki.caPem],
              });
              const names = (await client.list()).map((entry) => entry.name);
              assert.ok(names.includes("data.bin"), names.join());
              await client.get("data.bin", `${dir}/data.bin`, {
                overwrite: true,
              });
              assert.deepEqual(await Deno.readFile(`${dir}/data.bin`), content);
              await client.put(`${dir}/data.bin`, "copy.bin", {
                overwrite: true,
              });
              assert.deepEqual(
                await Deno.readFile(`${root}/copy.bin`),
                content,
              );
            }
          } finally {
            await Deno.remove(dir, { recursive: true });
          }
        },
      );
    });
  },
});

Deno.test({
  name:
    `connect() refuses a TLS server whose certificate another CA signed${SKIPPED}`,
  ignore: !OPENSSL,
  async fn() {
    await withPki(async (pki) => {
      await withServer(
        { cert: pki.certPem, key: pki.keyPem, handshakeTimeoutMs: 2000 },
        async ({ port }) => {
          const error = await rejectsWith(
            connect({ port, caCerts: [pki.otherCaPem] }),
            ["CONNECTION"],
            /^Untrusted TLS certificate from 127\.0\.0\.1:\d+: /,
          );
          assert.ok(!error.message.includes("\n"));
          // Without any CA of ours, the system roots do not trust it either.
          await rejectsWith(connect({ port, tls: true }), ["CONNECTION"]);
        },
      );
    });
  },
});

Deno.test({
  name: `connect() without TLS fails cleanly against a TLS server${SKIPPED}`,
  ignore: !OPENSSL,
  async fn() {
    await withPki(async (pki) => {
      await withServer(
        { cert: pki.certPem, key: pki.keyPem, handshakeTimeoutMs: 500 },
        async ({ port }) => {
          // An error, not a hang: at the latest the server's handshake
          // deadline closes the connection.
          await rejectsWith(
            connect({ port }),
            ["CONNECTION"],
            /^127\.0\.0\.1:\d+ answered with TLS: connect with TLS/,
          );
        },
      );
    });
  },
});

Deno.test({
  name: `connect() with TLS fails cleanly against a plain server${SKIPPED}`,
  ignore: !OPENSSL,
  async fn() {
    await withPki(async (pki) => {
      await withServer({ handshakeTimeoutMs: 500 }, async ({ port }) => {
        await rejectsWith(connect({ port, caCerts: [pki.caPem] }), [
          "CONNECTION",
          "TIMEOUT",
        ]);
      });
    });
  },
});

Deno.test({
  name: `serve() combines a token with TLS${SKIPPED}`,
  ignore: !OPENSSL,
  async fn() {
    await withPki(async (pki) => {
      const token = `ferry-token-${crypto.randomUUID()}`;
      await withServer(
        {
          cert: pki.certPem,
          key: pki.keyPem,
          token,
          authFailureDelayMs: 1,
          files: { "hi.txt": "hi\n" },
        },
        async ({ port }) => {
          {
            await using client = await connect({
              port,
              token,
              caCerts: [pki.caPem],
            });
            assert.equal((await client.stat("hi.txt")).size, 3);
          }
          await rejectsWith(
            connect({ port, token: "wrong", caCerts: [pki.caPem] }),
            ["UNAUTHORIZED"],
          );
          await rejectsWith(
            connect({ port, caCerts: [pki.caPem] }),
            ["UNAUTHORIZED"],
            /requires a token/,
          );
        },
      );
    });
  },
});

Deno.test({
  name:
    `server.ts --cert --key prints tls:// and client.ts --ca talks to it${SKIPPED}`,
  ignore: !OPENSSL,
  async fn() {
    await withPki(async (pki) => {
      const root = await Deno.makeTempDir({ prefix: "ferry_test_" });
      try {
        await Deno.writeTextFile(`${root}/hi.txt`, "hi\n");
        const server = await startServerProcess([
          "--root",
          root,
          "--port",
          "0",
          "--cert",
          pki.certPath,
          "--key",
          pki.keyPath,
        ]);
        try {
          assert.match(
            server.line,
            /^Listening on tls:\/\/127\.0\.0\.1:\d+ \(root .*, read-only\)$/,
          );
          const port = String(server.port);
          const good = await runScript(CLIENT_SCRIPT, [
            "--port",
            port,
            "--ca",
            pki.caPath,
            "ls",
          ]);
          assert.equal(good.stderr, "");
          assert.equal(good.code, 0);
          assert.match(good.stdout, /hi\.txt/);
          const untrusted = await runScript(CLIENT_SCRIPT, [
            "--port",
            port,
            "--ca",
            pki.otherCaPath,
            "ls",
          ]);
          assert.equal(untrusted.code, 1);
          assert.match(
            untrusted.stderr,
            /^ferry: ls: untrusted TLS certificate from 127\.0\.0\.1:\d+: .*\n$/,
          );
        } finally {
          assert.equal((await server.stop()).code, 0);
        }
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    });
  },
});

Deno.test("server.ts and client.ts refuse incomplete TLS options with exit code 2", async () => {
  const alone = await runScript(SERVER_SCRIPT, ["--port", "0", "--cert", "x"]);
  assert.equal(alone.code, 2);
  assert.equal(alone.stderr, "ferry-server: --cert and --key go together\n");
  const missing = await runScript(SERVER_SCRIPT, [
    "--port",
    "0",
    "--cert",
    "/definitely/not/here.pem",
    "--key",
    "/definitely/not/here.key",
  ]);
  assert.equal(missing.code, 2);
  assert.equal(
    missing.stderr,
    "ferry-server: cannot read --cert /definitely/not/here.pem: not found\n",
  );
  const client = await runScript(CLIENT_SCRIPT, [
    "--ca",
    "/definitely/not/here.pem",
    "ls",
  ]);
  assert.equal(client.code, 2);
  assert.equal(
    client.stderr,
    "ferry: cannot read --ca /definitely/not/here.pem: not found\n",
  );
  const classic = await runScript(CLIENT_SCRIPT, [
    "--classic",
    "--tls",
    "get",
    "x",
  ]);
  assert.equal(classic.code, 2);
  assert.match(classic.stderr, /^ferry: --classic cannot be combined with/);
});
