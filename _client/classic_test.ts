import assert from "node:assert/strict";
import { classicGet } from "./classic.ts";
import {
  BufferWriter,
  freePort,
  runClient,
  startPythonClassicServer,
  writeRandomFile,
} from "../tests/_util/client.ts";
import {
  assertFerryError,
  bytesEqual,
  classicSeedProblem,
  exists,
  randomBytes,
  sha256Hex,
  withTempDir,
} from "../tests/_util/util.ts";

const encoder = new TextEncoder();

/** Reads exactly `n` bytes, or fewer if the stream ends. */
async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(n);
  let have = 0;
  while (have < n) {
    const got = await conn.read(bytes.subarray(have));
    if (got === null) break;
    have += got;
  }
  return bytes.subarray(0, have);
}

/** Writes each part with its own awaited write, Nagle off. */
async function send(
  conn: Deno.Conn,
  ...parts: (string | Uint8Array)[]
): Promise<void> {
  for (const part of parts) {
    const bytes = typeof part === "string" ? encoder.encode(part) : part;
    let at = 0;
    while (at < bytes.length) at += await conn.write(bytes.subarray(at));
  }
}

/** Waits until the client closes its end. */
async function awaitEnd(conn: Deno.Conn): Promise<void> {
  const scratch = new Uint8Array(64);
  while (await conn.read(scratch) !== null) { /* ignore */ }
}

/**
 * A fake classic server for one connection: checks the client sent `name`,
 * then runs `script`. Write errors after the client gave up are ignored.
 */
function fakeClassicServer(
  name: string,
  script: (conn: Deno.TcpConn) => Promise<void>,
): {
  port: number;
  done: Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    conn.setNoDelay(true);
    try {
      const expected = encoder.encode(name);
      const got = await readExactly(conn, expected.length);
      assert.deepEqual(got, expected);
      await script(conn);
    } catch (error) {
      if (
        !(error instanceof Deno.errors.BrokenPipe ||
          error instanceof Deno.errors.ConnectionReset)
      ) {
        throw error;
      }
    } finally {
      conn.close();
    }
  })();
  return {
    port: listener.addr.port,
    done,
    async [Symbol.asyncDispose]() {
      await done;
    },
  };
}

/** Expects `READY` next from the client. */
async function expectReady(conn: Deno.Conn): Promise<void> {
  const got = new TextDecoder().decode(await readExactly(conn, 5));
  assert.equal(got, "READY");
}

/** Runs classicGet into DIR/out and returns the error it threw, if any. */
async function getInto(
  dir: string,
  port: number,
  name = "f.bin",
): Promise<{ error?: unknown; dest: string }> {
  const dest = `${dir}/out`;
  try {
    await classicGet(name, dest, { port, timeoutMs: 5000 });
    return { dest };
  } catch (error) {
    return { error, dest };
  }
}

async function assertNothingSaved(dest: string): Promise<void> {
  assert.equal(await exists(dest), false, "destination must not exist");
  assert.equal(await exists(`${dest}.part`), false, ".part must not exist");
}

const DATA = randomBytes(4096);

/** The ways a header can reach the client, all of them valid. */
const VALID_SPLITS: [string, (conn: Deno.TcpConn) => Promise<void>][] = [
  ["EXISTS and the digits in one write", (conn) => send(conn, "EXISTS4096")],
  ["EXISTS, then the digits", (conn) => send(conn, "EXISTS", "4096")],
  [
    "every byte in its own write",
    (conn) => send(conn, ..."EXISTS4096".split("")),
  ],
  [
    "EXISTS glued to the first digit",
    (conn) => send(conn, "EXISTS4", "096"),
  ],
  ["EXISTS split inside", (conn) => send(conn, "EXI", "STS40", "9", "6")],
  ["a size with leading zeros", (conn) => send(conn, "EXISTS", "004096")],
];

for (const [how, header] of VALID_SPLITS) {
  Deno.test(`classicGet() reads a reply split as: ${how}`, async () => {
    await withTempDir(async (dir) => {
      await using server = fakeClassicServer("f.bin", async (conn) => {
        await header(conn);
        await expectReady(conn);
        // The data in uneven pieces.
        await send(conn, DATA.subarray(0, 1), DATA.subarray(1, 1500));
        await send(conn, DATA.subarray(1500));
      });
      const dest = `${dir}/out`;
      const result = await classicGet("f.bin", dest, { port: server.port });
      assert.equal(result.bytes, DATA.length);
      assert.equal(result.sha256, sha256Hex(DATA));
      assert.equal(result.path, "f.bin");
      assert.ok(bytesEqual(await Deno.readFile(dest), DATA));
      assert.equal(await exists(`${dest}.part`), false);
    });
  });
}

Deno.test("classicGet() saves an empty file for size 0", async () => {
  await withTempDir(async (dir) => {
    await using server = fakeClassicServer("f.bin", async (conn) => {
      await send(conn, "EXISTS", "0");
      await expectReady(conn);
    });
    const { error, dest } = await getInto(dir, server.port);
    assert.equal(error, undefined);
    assert.equal((await Deno.readFile(dest)).length, 0);
  });
});

Deno.test("classicGet() reports NOT_EXISTS split in two as NOT_FOUND", async () => {
  await withTempDir(async (dir) => {
    await using server = fakeClassicServer("f.bin", async (conn) => {
      await send(conn, "NOT_", "EXI", "STS");
    });
    const { error, dest } = await getInto(dir, server.port);
    assertFerryError(error, "NOT_FOUND", /f\.bin/);
    await assertNothingSaved(dest);
  });
});

Deno.test("classicGet() reports data cut short and keeps no file", async () => {
  await withTempDir(async (dir) => {
    await using server = fakeClassicServer("f.bin", async (conn) => {
      await send(conn, "EXISTS", "4096");
      await expectReady(conn);
      await send(conn, DATA.subarray(0, 1000));
    });
    const { error, dest } = await getInto(dir, server.port);
    assertFerryError(
      error,
      "CONNECTION",
      /^Connection closed after 1000 of 4096 bytes$/,
    );
    await assertNothingSaved(dest);
  });
});

Deno.test("classicGet() refuses data beyond the announced size", async () => {
  await withTempDir(async (dir) => {
    await using server = fakeClassicServer("f.bin", async (conn) => {
      await send(conn, "EXISTS", "4000");
      await expectReady(conn);
      await send(conn, DATA);
    });
    const { error, dest } = await getInto(dir, server.port);
    assertFerryError(error, "PROTOCOL", /more than the announced 4000 bytes/);
    await assertNothingSaved(dest);
  });
});

/** Replies that must be refused, never turned into a file. */
const BAD_REPLIES: [string, string[], string, RegExp][] = [
  ["a non-digit inside the size", ["EXISTS", "12x4"], "PROTOCOL", /Non-digit/],
  ["a keyword that is neither", ["EXISTX4"], "PROTOCOL", /Unexpected reply/],
  ["a reply that is no keyword", ["hello"], "PROTOCOL", /Unexpected/],
  [
    "more than 20 digits",
    ["EXISTS", "1".repeat(21)],
    "PROTOCOL",
    /longer than 20 digits/,
  ],
  [
    "a size above Number.MAX_SAFE_INTEGER",
    ["EXISTS", "9007199254740993"],
    "PROTOCOL",
    /out of range/,
  ],
  [
    "data sent without waiting for READY",
    ["EXISTS5hello"],
    "PROTOCOL",
    /Non-digit/,
  ],
  ["EXISTS and then the end", ["EXISTS"], "CONNECTION", /inside the classic/],
  ["no reply at all", [], "CONNECTION", /before the classic server replied/],
];

for (const [what, parts, code, pattern] of BAD_REPLIES) {
  Deno.test(`classicGet() refuses ${what}`, async () => {
    await withTempDir(async (dir) => {
      await using server = fakeClassicServer("f.bin", async (conn) => {
        await send(conn, ...parts);
        if (code !== "CONNECTION") await awaitEnd(conn);
      });
      const { error, dest } = await getInto(dir, server.port);
      assertFerryError(error, code, pattern);
      await assertNothingSaved(dest);
    });
  });
}

Deno.test("classicGet() fails with TIMEOUT when the server stays silent", async () => {
  await withTempDir(async (dir) => {
    await using server = fakeClassicServer("f.bin", awaitEnd);
    const dest = `${dir}/out`;
    const error = await classicGet("f.bin", dest, {
      port: server.port,
      timeoutMs: 300,
    }).catch((e) => e);
    assertFerryError(error, "TIMEOUT", /300 ms/);
    await assertNothingSaved(dest);
  });
});

Deno.test("classicGet() rejects with the abort reason when aborted", async () => {
  await withTempDir(async (dir) => {
    const controller = new AbortController();
    await using server = fakeClassicServer("f.bin", async (conn) => {
      controller.abort(new Error("stop"));
      await awaitEnd(conn);
    });
    const dest = `${dir}/out`;
    const error = await classicGet("f.bin", dest, {
      port: server.port,
      signal: controller.signal,
    }).catch((e) => e);
    assert.ok(error instanceof Error);
    assert.equal(error.message, "stop");
    await assertNothingSaved(dest);
  });
});

Deno.test("classicGet() refuses an existing destination without overwrite", async () => {
  await withTempDir(async (dir) => {
    const dest = `${dir}/out`;
    await Deno.writeTextFile(dest, "keep me");
    // Nothing listens on the port: the check comes before connecting.
    const error = await classicGet("f.bin", dest, { port: freePort() })
      .catch((e) => e);
    assertFerryError(error, "EXISTS");
    assert.equal(await Deno.readTextFile(dest), "keep me");

    await using server = fakeClassicServer("f.bin", async (conn) => {
      await send(conn, "EXISTS", "4096");
      await expectReady(conn);
      await send(conn, DATA);
    });
    await classicGet("f.bin", dest, { port: server.port, overwrite: true });
    assert.ok(bytesEqual(await Deno.readFile(dest), DATA));
  });
});

Deno.test("classicGet() writes to a ByteWriter", async () => {
  await using server = fakeClassicServer("f.bin", async (conn) => {
    await send(conn, "EXISTS", "4096");
    await expectReady(conn);
    await send(conn, DATA);
  });
  const writer = new BufferWriter();
  const result = await classicGet("f.bin", writer, { port: server.port });
  assert.equal(result.sha256, sha256Hex(DATA));
  assert.ok(bytesEqual(writer.bytes(), DATA));
});

Deno.test("classicGet() reports a refused connection", async () => {
  const port = freePort();
  const error = await classicGet("f.bin", new BufferWriter(), { port })
    .catch((e) => e);
  assertFerryError(
    error,
    "CONNECTION",
    new RegExp(`^Connection refused: 127\\.0\\.0\\.1:${port}$`),
  );
});

const SEED_PROBLEM = await classicSeedProblem();
const PYTHON = SEED_PROBLEM === undefined;

Deno.test({
  name: PYTHON
    ? "classicGet() downloads every kind of file from the real classic_server.py"
    : `classicGet() against classic_server.py (ignored: ${SEED_PROBLEM})`,
  ignore: !PYTHON,
  async fn(t) {
    await withTempDir(async (dir) => {
      const root = `${dir}/srv`;
      const out = `${dir}/out`;
      await Deno.mkdir(root);
      await Deno.mkdir(out);
      await using server = await startPythonClassicServer(root);
      const port = server.port;

      for (const size of [0, 1, 1023, 1024, 1025, 8 * 1024 * 1024]) {
        await t.step(`size ${size}`, async () => {
          const data = await writeRandomFile(`${root}/f${size}.bin`, size);
          const dest = `${out}/f${size}.bin`;
          const result = await classicGet(`f${size}.bin`, dest, { port });
          assert.equal(result.bytes, size);
          assert.equal(result.sha256, sha256Hex(data));
          assert.ok(bytesEqual(await Deno.readFile(dest), data));
        });
      }

      for (const name of ["with space.txt", "café é.txt", "日本.txt"]) {
        await t.step(`name ${JSON.stringify(name)}`, async () => {
          const data = await writeRandomFile(`${root}/${name}`, 3000);
          const dest = `${out}/${name}`;
          await classicGet(name, dest, { port });
          assert.ok(bytesEqual(await Deno.readFile(dest), data));
        });
      }

      await t.step("a missing name is NOT_FOUND", async () => {
        const dest = `${out}/missing.txt`;
        const error = await classicGet("missing.txt", dest, { port })
          .catch((e) => e);
        assertFerryError(error, "NOT_FOUND");
        await assertNothingSaved(dest);
      });

      await t.step(
        "../x is saved in the destination, not beside it",
        async () => {
          // The classic server does serve ../x (relative to its folder).
          const outside = await writeRandomFile(`${dir}/x`, 100);
          const cli = await runClient(
            ["--classic", "--port", String(port), "get", "../x"],
            { cwd: out },
          );
          assert.equal(cli.code, 0, cli.stderr);
          assert.ok(bytesEqual(await Deno.readFile(`${out}/x`), outside));
          assert.ok(bytesEqual(await Deno.readFile(`${dir}/x`), outside));
          const names = [];
          for await (const entry of Deno.readDir(dir)) names.push(entry.name);
          assert.deepEqual(names.sort(), ["out", "srv", "x"]);
        },
      );

      await t.step("the CLI reports a missing name in one line", async () => {
        const cli = await runClient(
          ["get", "nope.txt", "--classic", "--port", String(port)],
          { cwd: out },
        );
        assert.equal(cli.code, 1);
        assert.equal(cli.stderr, "ferry: get nope.txt: not found\n");
      });

      await t.step("the CLI writes to stdout with -o -", async () => {
        const data = await writeRandomFile(`${root}/s.bin`, 5000);
        const cli = await runClient(
          ["--classic", "--port", String(port), "get", "s.bin", "-o", "-"],
          { cwd: out },
        );
        assert.equal(cli.code, 0, cli.stderr);
        assert.ok(bytesEqual(cli.stdoutBytes, data));
      });
    });
  },
});
