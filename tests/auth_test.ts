import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { AuthThrottle } from "../_server/auth.ts";
import { resolveToken } from "../_common/token_source.ts";
import { RawClient, sha256, withServer } from "./_util/server.ts";
import {
  containsBytes,
  rawAuth,
  startCaptureProxy,
  startServerProcess,
} from "./_util/security.ts";
import { connect, FerryError } from "../client.ts";
import { HELLO_AUTH_REQUIRED } from "../protocol.ts";
import { serve } from "../server.ts";
import {
  CLIENT_SCRIPT,
  concat,
  readUntilClosed,
  rejectsWith,
  runScript,
  SERVER_SCRIPT,
} from "./_util/util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function makeToken(): string {
  return `ferry-token-${crypto.randomUUID()}`;
}

Deno.test("serve() with a token lets a client with the right token list, get and put", async () => {
  const token = makeToken();
  await withServer(
    { token, allowUpload: true, files: { "hi.txt": "hi\n" } },
    async ({ port, root }) => {
      await using client = await connect({ port, token });
      const names = (await client.list()).map((entry) => entry.name);
      assert.deepEqual(names, ["hi.txt"]);
      const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
      try {
        await client.get("hi.txt", `${dir}/hi.txt`);
        assert.equal(await Deno.readTextFile(`${dir}/hi.txt`), "hi\n");
        await Deno.writeTextFile(`${dir}/up.txt`, "up\n");
        await client.put(`${dir}/up.txt`, "up.txt");
        assert.equal(await Deno.readTextFile(`${root}/up.txt`), "up\n");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
});

Deno.test("serve() answers a wrong token with UNAUTHORIZED and closes the connection", async () => {
  await withServer(
    { token: makeToken(), authFailureDelayMs: 1 },
    async ({ port, waitForLog }) => {
      await rejectsWith(
        connect({ port, token: "not-the-token" }),
        "UNAUTHORIZED",
        /Authentication failed/,
      );
      const raw = await RawClient.connect(port);
      try {
        const { reply } = await rawAuth(raw, "not-the-token");
        assert.equal(reply, "UNAUTHORIZED");
        assert.ok(await raw.closedByPeer());
      } finally {
        raw.close();
      }
      const event = await waitForLog((e) => e.request === "HELLO");
      assert.equal(event.result, "UNAUTHORIZED");
    },
  );
});

Deno.test("connect() without a token reports UNAUTHORIZED when the server requires one", async () => {
  await withServer({ token: makeToken() }, async ({ port }) => {
    await rejectsWith(
      connect({ port }),
      "UNAUTHORIZED",
      /^Server requires a token \(--token-file or FERRY_TOKEN\)$/,
    );
  });
});

Deno.test("serve() with a token answers a request sent instead of AUTH with UNAUTHORIZED", async () => {
  await withServer(
    { token: makeToken(), authFailureDelayMs: 1, files: { "a.txt": "a" } },
    async ({ port, canary }) => {
      const raw = await RawClient.connect(port, true);
      try {
        const hello = await raw.hello();
        assert.equal(hello.flags & HELLO_AUTH_REQUIRED, HELLO_AUTH_REQUIRED);
        await raw.send({ type: "list", path: "", recursive: false });
        await raw.expectError("UNAUTHORIZED");
        assert.ok(await raw.closedByPeer());
        assert.ok(!raw.transcript.includes("a.txt"));
        assert.ok(!raw.transcript.includes(canary));
      } finally {
        raw.close();
      }
    },
  );
});

Deno.test("serve() slows repeated authentication failures from one address", async () => {
  const base = 40;
  await withServer(
    { token: makeToken(), authFailureDelayMs: base },
    async ({ port }) => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const raw = await RawClient.connect(port);
        try {
          const { reply, ms } = await rawAuth(raw, "wrong");
          assert.equal(reply, "UNAUTHORIZED");
          times.push(ms);
        } finally {
          raw.close();
        }
      }
      // Lower bounds only: each failure waits at least base * 2^(n-1).
      // (1 ms of slack for timer rounding.)
      assert.ok(times[0] >= base - 1, `first ${times[0]} ms`);
      assert.ok(times[1] >= 2 * base - 1, `second ${times[1]} ms`);
      assert.ok(times[2] >= 4 * base - 1, `third ${times[2]} ms`);
    },
  );
});

Deno.test("AuthThrottle doubles, caps, forgets and stays bounded", () => {
  let now = 0;
  const throttle = new AuthThrottle({
    baseDelayMs: 250,
    maxDelayMs: 5000,
    forgetMs: 600_000,
    maxAddresses: 3,
    now: () => now,
  });
  const delays = Array.from({ length: 7 }, () => throttle.fail("10.0.0.1"));
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 5000, 5000]);
  assert.equal(throttle.fail("10.0.0.2"), 250, "addresses are separate");
  throttle.succeed("10.0.0.1");
  assert.equal(throttle.fail("10.0.0.1"), 250, "success forgets");
  assert.equal(throttle.fail("10.0.0.1"), 500);
  now += 600_000;
  assert.equal(throttle.fail("10.0.0.1"), 250, "a quiet period forgets");
  now += 1;
  throttle.fail("10.0.0.3");
  throttle.fail("10.0.0.4");
  assert.equal(throttle.size, 3);
  // 10.0.0.2 failed longest ago: it was dropped, and starts afresh.
  assert.equal(throttle.fail("10.0.0.2"), 250);
  assert.equal(throttle.size, 3);
  assert.equal(throttle.fail("10.0.0.4"), 500, "recent ones are kept");
});

Deno.test("AuthThrottle counts an IPv6 client by its /64, so rotating addresses does not reset the delay", () => {
  const throttle = new AuthThrottle({ baseDelayMs: 250, maxDelayMs: 5000 });
  assert.equal(throttle.fail("2001:db8:1:2::1"), 250);
  assert.equal(throttle.fail("2001:db8:1:2::2"), 500);
  assert.equal(throttle.fail("2001:db8:1:2:ffff:0:0:9"), 1000);
  assert.equal(throttle.fail("2001:db8:1:3::1"), 250, "another /64");
  throttle.succeed("2001:db8:1:2::77");
  assert.equal(throttle.fail("2001:db8:1:2::1"), 250, "success forgets");
});

Deno.test("serve() with a token refuses classic requests without serving them", async () => {
  await withServer(
    { token: makeToken(), files: { "hi.txt": "hi\n" } },
    async ({ port, waitForLog }) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(encoder.encode("hi.txt"));
        const received = await readUntilClosed(conn);
        assert.equal(received.length, 0, decoder.decode(received));
      } finally {
        conn.close();
      }
      const event = await waitForLog((e) => e.protocol === "classic");
      assert.equal(event.result, "UNAUTHORIZED");
    },
  );
});

Deno.test("serve() rejects an empty token", async () => {
  await assert.rejects(serve({ token: "", port: 0 }), TypeError);
});

Deno.test("captured bytes of an authenticated session never contain the token", async () => {
  const token = makeToken();
  const content = encoder.encode(`payload ${crypto.randomUUID()}\n`.repeat(50));
  await withServer(
    { token, allowUpload: true, files: { "down.txt": content } },
    async ({ port, root }) => {
      await using proxy = startCaptureProxy(port);
      const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
      try {
        {
          await using client = await connect({ port: proxy.port, token });
          await client.get("down.txt", `${dir}/down.txt`);
          await Deno.writeFile(`${dir}/up.bin`, content.toReversed());
          await client.put(`${dir}/up.bin`, "up.bin");
        }
        assert.deepEqual(
          await Deno.readFile(`${root}/up.bin`),
          content.toReversed(),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
      await proxy[Symbol.asyncDispose]();
      const captured = concat(proxy.captured());
      // The capture worked: both files crossed the proxy.
      assert.ok(containsBytes(captured, content));
      assert.ok(containsBytes(captured, content.toReversed()));
      const tokenBytes = encoder.encode(token);
      const forms = [
        tokenBytes,
        encoder.encode(Buffer.from(tokenBytes).toString("hex")),
        encoder.encode(Buffer.from(tokenBytes).toString("hex").toUpperCase()),
        encoder.encode(Buffer.from(tokenBytes).toString("base64")),
        encoder.encode(Buffer.from(tokenBytes).toString("base64url")),
        sha256(tokenBytes),
      ];
      for (const form of forms) {
        assert.ok(!containsBytes(captured, form), "the token leaked");
      }
      // Nor any 8-byte window of it (a partial leak).
      for (let i = 0; i + 8 <= tokenBytes.length; i++) {
        assert.ok(!containsBytes(captured, tokenBytes.subarray(i, i + 8)));
      }
    },
  );
});

// ---------------------------------------------------------------------------
// Command line

Deno.test("server.ts and client.ts authenticate with --token-file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const token = makeToken();
    await Deno.mkdir(`${dir}/root`);
    await Deno.writeTextFile(`${dir}/root/hi.txt`, "hi\n");
    await Deno.writeTextFile(`${dir}/token`, `  ${token}  \nignored line\n`);
    const server = await startServerProcess([
      "--root",
      `${dir}/root`,
      "--port",
      "0",
      "--token-file",
      `${dir}/token`,
    ]);
    try {
      assert.match(server.line, /^Listening on tcp:\/\/127\.0\.0\.1:\d+ /);
      const port = String(server.port);
      const good = await runScript(CLIENT_SCRIPT, [
        "--port",
        port,
        "--token-file",
        `${dir}/token`,
        "ls",
      ]);
      assert.equal(good.stderr, "");
      assert.equal(good.code, 0);
      assert.match(good.stdout, /hi\.txt/);
      const missing = await runScript(CLIENT_SCRIPT, ["--port", port, "ls"]);
      assert.equal(missing.code, 1);
      assert.equal(
        missing.stderr,
        "ferry: ls: unauthorized: server requires a token (--token-file or FERRY_TOKEN)\n",
      );
      const wrong = await runScript(CLIENT_SCRIPT, [
        "--port",
        port,
        "--token",
        "wrong",
        "ls",
      ]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /^ferry: ls: unauthorized: /);
      assert.equal(wrong.stderr.trim().split("\n").length, 1);
    } finally {
      const { code, stderr } = await server.stop();
      assert.equal(code, 0);
      assert.doesNotMatch(stderr, /warning/);
      assert.ok(!stderr.includes(token));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts and client.ts read the token from FERRY_TOKEN", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const token = makeToken();
    await Deno.mkdir(`${dir}/root`);
    await Deno.writeTextFile(`${dir}/root/hi.txt`, "hi\n");
    const server = await startServerProcess(
      ["--root", `${dir}/root`, "--port", "0"],
      { FERRY_TOKEN: token },
    );
    try {
      const port = String(server.port);
      const good = await runScript(
        CLIENT_SCRIPT,
        ["--port", port, "get", "hi.txt", "-o", `${dir}/hi.txt`],
        { env: { FERRY_TOKEN: token } },
      );
      assert.equal(good.stderr, "");
      assert.equal(good.code, 0);
      assert.equal(await Deno.readTextFile(`${dir}/hi.txt`), "hi\n");
      // The flag wins over the variable.
      const flagWins = await runScript(
        CLIENT_SCRIPT,
        ["--port", port, "--token", "wrong", "ls"],
        { env: { FERRY_TOKEN: token } },
      );
      assert.equal(flagWins.code, 1);
      assert.match(flagWins.stderr, /^ferry: ls: unauthorized/);
      // So does the file.
      await Deno.writeTextFile(`${dir}/wrong`, "wrong\n");
      const fileWins = await runScript(
        CLIENT_SCRIPT,
        ["--port", port, "--token-file", `${dir}/wrong`, "ls"],
        { env: { FERRY_TOKEN: token } },
      );
      assert.equal(fileWins.code, 1);
      assert.match(fileWins.stderr, /^ferry: ls: unauthorized/);
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts exits 2 on an unreadable or empty --token-file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    const missing = await runScript(SERVER_SCRIPT, [
      "--port",
      "0",
      "--token-file",
      `${dir}/nope`,
    ]);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      `ferry-server: cannot read --token-file ${dir}/nope: not found\n`,
    );
    await Deno.writeTextFile(`${dir}/empty`, "\n\n");
    const empty = await runScript(SERVER_SCRIPT, [
      "--port",
      "0",
      "--token-file",
      `${dir}/empty`,
    ]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /^ferry-server: empty token in --token-file /);
    assert.equal(empty.stdout, "");
    const client = await runScript(CLIENT_SCRIPT, [
      "--token-file",
      `${dir}/nope`,
      "ls",
    ]);
    assert.equal(client.code, 2);
    assert.equal(
      client.stderr,
      `ferry: cannot read --token-file ${dir}/nope: not found\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts warns when it listens on all interfaces or takes uploads without a token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    // Binds every interface for a moment; nothing connects to it.
    const exposed = await startServerProcess([
      "--root",
      dir,
      "--host",
      "0.0.0.0",
      "--port",
      "0",
      "--allow-upload",
    ]);
    assert.match(exposed.line, /^Listening on tcp:\/\/0\.0\.0\.0:\d+ /);
    const { code, stderr } = await exposed.stop();
    assert.equal(code, 0);
    assert.match(
      stderr,
      /^ferry-server: warning: listening on 0\.0\.0\.0 without a token/m,
    );
    assert.match(
      stderr,
      /^ferry-server: warning: uploads are allowed without a token/m,
    );
    const guarded = await startServerProcess(
      ["--root", dir, "--port", "0", "--allow-upload"],
      { FERRY_TOKEN: makeToken() },
    );
    assert.match(guarded.line, /^Listening on tcp:\/\/127\.0\.0\.1:\d+ /);
    const quiet = await guarded.stop();
    assert.equal(quiet.code, 0);
    assert.doesNotMatch(quiet.stderr, /without a token|without TLS/);
    // What a local user inside the root can still do is always said.
    assert.match(
      quiet.stderr,
      /^ferry-server: warning: (?:without --allow-ffi on Linux, uploads are moved into place, and MKDIR and DELETE act, by name|resumable upload parts are created by name)/m,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server.ts and client.ts --help tell to prefer FERRY_TOKEN or --token-file", async () => {
  for (const script of [SERVER_SCRIPT, CLIENT_SCRIPT]) {
    const { code, stdout } = await runScript(script, ["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /--token SECRET/);
    assert.match(stdout, /--token-file PATH/);
    assert.match(stdout, /visible in ps/);
    assert.match(stdout, /prefer FERRY_TOKEN or --token-file/);
  }
});

Deno.test("resolveToken() prefers the flag, then the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.writeTextFile(`${dir}/token`, "  from-file \r\nsecond\n");
    const flag = await resolveToken("from-flag", `${dir}/token`);
    assert.deepEqual([flag.token, flag.from], ["from-flag", "flag"]);
    const file = await resolveToken(undefined, `${dir}/token`);
    assert.deepEqual([file.token, file.from], ["from-file", "file"]);
    await assert.rejects(resolveToken("", undefined), FerryError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
