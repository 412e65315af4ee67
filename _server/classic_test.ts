import assert from "node:assert/strict";
import { CLASSIC_SIZE_GAP_MS } from "./classic.ts";
import { RawClient, testBytes, withServer } from "../tests/_util/server.ts";
import { classicSeedProblem, concat, SEED_DIR } from "../tests/_util/util.ts";

const CLASSIC_CLIENT = `${SEED_DIR}classic_client.py`;

const SEED_PROBLEM = await classicSeedProblem();
const PYTHON = SEED_PROBLEM === undefined;
const PYTHON_NOTE = PYTHON ? "" : ` (ignored: ${SEED_PROBLEM})`;

/**
 * Runs the unmodified classic client against `port` in a new folder under
 * `base`, typing `name` at its prompt; returns that folder, its output and
 * its exit code.
 */
async function runClassicClient(
  port: number,
  name: string,
  base: string,
): Promise<{ cwd: string; code: number; stdout: string; stderr: string }> {
  const cwd = await Deno.makeTempDir({ dir: base, prefix: "client_" });
  const program = `exec(open(${
    JSON.stringify(CLASSIC_CLIENT)
  }, encoding="utf-8").read().replace('PORT = 65432', 'PORT = ${port}'))`;
  const child = new Deno.Command("python3", {
    args: ["-c", program],
    cwd,
    env: { PYTHONUTF8: "1", PYTHONIOENCODING: "utf-8" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(name + "\n"));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    cwd,
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test({
  name:
    `serve() sends files of 0, 1, 1023, 1024, 1025 bytes and 8 MiB to the real classic client${PYTHON_NOTE}`,
  ignore: !PYTHON,
  async fn() {
    const sizes = [0, 1, 1023, 1024, 1025, 8 * 1024 * 1024];
    const files: Record<string, Uint8Array> = {};
    for (const size of sizes) files[`f${size}.bin`] = testBytes(size, size + 1);
    await withServer({ files }, async ({ port, base, waitForLog }) => {
      await Promise.all(sizes.map(async (size) => {
        const name = `f${size}.bin`;
        const { cwd, code, stdout, stderr } = await runClassicClient(
          port,
          name,
          base,
        );
        assert.equal(code, 0, stderr);
        assert.ok(
          stdout.includes(
            `File '${name}' exists on server, size: ${size} bytes.`,
          ),
          stdout.slice(0, 300),
        );
        assert.deepEqual(
          await Deno.readFile(`${cwd}/received_${name}`),
          files[name],
        );
        const event = await waitForLog((e) => e.path === name);
        assert.deepEqual(
          [event.protocol, event.request, event.bytes, event.result],
          ["classic", "GET", size, "ok"],
        );
      }));
    });
  },
});

Deno.test({
  name:
    `serve() sends names with spaces and non-ASCII letters to the real classic client${PYTHON_NOTE}`,
  ignore: !PYTHON,
  async fn() {
    const names = ["with space.txt", "café é.txt", "日本.txt"];
    const files: Record<string, string> = {};
    for (const name of names) files[name] = `content of ${name}\n`;
    await withServer({ files }, async ({ port, base }) => {
      for (const name of names) {
        const { cwd, code, stdout, stderr } = await runClassicClient(
          port,
          name,
          base,
        );
        assert.equal(code, 0, stderr);
        assert.ok(stdout.includes("received and saved"), stdout);
        assert.equal(
          await Deno.readTextFile(`${cwd}/received_${name}`),
          files[name],
        );
      }
    });
  },
});

Deno.test({
  name:
    `serve() tells the real classic client about a missing file and an escape${PYTHON_NOTE}`,
  ignore: !PYTHON,
  async fn() {
    await withServer({ files: { "sub/a.txt": "a" } }, async (t) => {
      for (
        const [name, result] of [
          ["missing.txt", "NOT_FOUND"],
          ["../canary.txt", "FORBIDDEN"],
          ["sub", "FORBIDDEN"],
        ]
      ) {
        const { cwd, code, stdout } = await runClassicClient(
          t.port,
          name,
          t.base,
        );
        assert.equal(code, 0);
        assert.ok(
          stdout.includes("File does not exist on the server."),
          stdout,
        );
        assert.ok(!stdout.includes(t.canary));
        const written = [];
        for await (const entry of Deno.readDir(cwd)) written.push(entry.name);
        assert.deepEqual(written, []);
        const event = await t.waitForLog((e) => e.path === name);
        assert.deepEqual([event.protocol, event.result], ["classic", result]);
      }
    });
  },
});

/** A classic exchange by hand: each read's bytes are kept apart. */
async function classicExchange(
  port: number,
  name: string | Uint8Array,
): Promise<{ conn: Deno.Conn; reads: string[] }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    typeof name === "string" ? new TextEncoder().encode(name) : name,
  );
  const buffer = new Uint8Array(1024);
  const first = await conn.read(buffer);
  const reads = [new TextDecoder().decode(buffer.subarray(0, first ?? 0))];
  if (reads[0] === "EXISTS") {
    const second = await conn.read(buffer);
    reads.push(new TextDecoder().decode(buffer.subarray(0, second ?? 0)));
  }
  return { conn, reads };
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  let n: number | null;
  while ((n = await conn.read(buffer)) !== null) {
    chunks.push(buffer.slice(0, n));
  }
  return concat(chunks);
}

Deno.test("serve() sends EXISTS and the size in two reads, then the file after READY", async () => {
  const content = testBytes(300_000, 5);
  await withServer({ files: { "f.bin": content } }, async ({ port }) => {
    const started = performance.now();
    const { conn, reads } = await classicExchange(port, "f.bin");
    try {
      assert.deepEqual(reads, ["EXISTS", String(content.length)]);
      assert.ok(performance.now() - started >= CLASSIC_SIZE_GAP_MS - 5);
      await conn.write(new TextEncoder().encode("READY"));
      assert.deepEqual(await readAll(conn), content);
    } finally {
      conn.close();
    }
  });
});

Deno.test("serve() answers NOT_EXISTS to invalid UTF-8 and closes without data on a wrong READY", async () => {
  await withServer(
    { files: { "a.txt": "secret" } },
    async ({ port, waitForLog }) => {
      const invalid = await classicExchange(
        port,
        new Uint8Array([0x61, 0xff, 0xfe]),
      );
      try {
        assert.deepEqual(invalid.reads, ["NOT_EXISTS"]);
        assert.equal((await readAll(invalid.conn)).length, 0);
      } finally {
        invalid.conn.close();
      }
      const wrong = await classicExchange(port, "a.txt");
      try {
        assert.deepEqual(wrong.reads, ["EXISTS", "6"]);
        await wrong.conn.write(new TextEncoder().encode("NOPE!"));
        assert.equal((await readAll(wrong.conn)).length, 0);
        const event = await waitForLog((e) => e.path === "a.txt");
        assert.equal(event.result, "BAD_REQUEST");
      } finally {
        wrong.conn.close();
      }
    },
  );
});

Deno.test("serve() drops a classic peer that never says READY after handshakeTimeoutMs", async () => {
  await withServer(
    { handshakeTimeoutMs: 300, files: { "a.txt": "a" } },
    async ({ port, waitForLog }) => {
      const { conn, reads } = await classicExchange(port, "a.txt");
      try {
        assert.deepEqual(reads, ["EXISTS", "1"]);
        assert.equal((await readAll(conn)).length, 0);
        const event = await waitForLog((e) => e.path === "a.txt");
        assert.equal(event.result, "TIMEOUT");
      } finally {
        conn.close();
      }
    },
  );
});

Deno.test("serve() drops a silent peer after handshakeTimeoutMs while it serves a ferry client", async () => {
  const timeout = 400;
  await withServer(
    { handshakeTimeoutMs: timeout, files: { "a.txt": "abc" } },
    async ({ port }) => {
      const silent = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        const started = performance.now();
        let droppedYet = false;
        const dropped = readAll(silent).finally(() => droppedYet = true);
        const client = await RawClient.open(port);
        try {
          for (let i = 0; i < 5; i++) {
            const got = await client.get("a.txt");
            assert.equal(new TextDecoder().decode(got.bytes), "abc");
          }
          // Served while the silent peer was still waiting for its deadline.
          assert.equal(droppedYet, false);
        } finally {
          client.close();
        }
        assert.equal((await dropped).length, 0);
        assert.ok(performance.now() - started >= timeout - 50);
      } finally {
        silent.close();
      }
    },
  );
});

Deno.test("serve() answers NOT_EXISTS to a classic request for an upload temporary", async () => {
  await withServer(
    { files: { ".ferry-0123abcd.part": "partial upload" } },
    async ({ port, waitForLog }) => {
      const { conn, reads } = await classicExchange(
        port,
        ".ferry-0123abcd.part",
      );
      try {
        assert.deepEqual(reads, ["NOT_EXISTS"]);
        assert.equal((await readAll(conn)).length, 0);
        const event = await waitForLog((e) => e.protocol === "classic");
        assert.equal(event.result, "FORBIDDEN");
      } finally {
        conn.close();
      }
    },
  );
});
