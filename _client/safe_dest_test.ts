import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { checkTreeName, SafeDest } from "./safe_dest.ts";
import { runClient } from "../tests/_util/client.ts";
import { FerryError } from "../errors.ts";
import {
  encodeMessage,
  type Entry,
  FrameReader,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "../protocol.ts";

const HOSTILE_NAMES = [
  "../evil",
  "/abs",
  "a/../../x",
  "C:/x",
  "a\\b",
  "nul\0byte",
  "a//b",
  "./dot",
  "trailing/",
  "",
];

Deno.test("checkTreeName() refuses names that could leave the destination", () => {
  for (const name of HOSTILE_NAMES) {
    assert.throws(
      () => checkTreeName(name),
      (error) => error instanceof FerryError && error.code === "FORBIDDEN",
      JSON.stringify(name),
    );
  }
  assert.deepEqual(checkTreeName("a/b c/ünï.txt"), ["a", "b c", "ünï.txt"]);
  assert.deepEqual(checkTreeName("~/.ssh/x"), ["~", ".ssh", "x"]);
});

Deno.test("SafeDest refuses to write through a symbolic link or a .part link", async () => {
  const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.mkdir(`${base}/outside`);
    await Deno.mkdir(`${base}/dest`);
    await Deno.symlink(`${base}/outside`, `${base}/dest/link`);
    await Deno.symlink(`${base}/outside/p`, `${base}/dest/f.txt.part`);
    await Deno.writeTextFile(`${base}/dest/file`, "x");
    const dest = await SafeDest.open(`${base}/dest`);
    const code = (want: string) => (error: unknown) =>
      error instanceof FerryError && error.code === want;
    assert.throws(() => dest.prepareFile(["link", "x"]), code("FORBIDDEN"));
    assert.throws(() => dest.ensureFolder(["link", "y"]), code("FORBIDDEN"));
    assert.throws(() => dest.prepareFile(["link"]), code("FORBIDDEN"));
    assert.throws(() => dest.prepareFile(["f.txt"]), code("FORBIDDEN"));
    assert.throws(() => dest.prepareFile(["file", "x"]), code("EXISTS"));
    assert.equal(
      dest.prepareFile(["new", "deep", "ok.txt"]),
      `${base}/dest/new/deep/ok.txt`,
    );
    assert.ok((await Deno.lstat(`${base}/dest/new/deep`)).isDirectory);
    assert.deepEqual([...Deno.readDirSync(`${base}/outside`)], []);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

/** A fake server that lists `entries` under any folder and serves "pwned". */
async function withHostileServer(
  entries: Entry[],
  fn: (port: number, requested: string[]) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requested: string[] = [];
  const body = new TextEncoder().encode("pwned");
  const digest = new Uint8Array(createHash("sha256").update(body).digest());
  const handlers: Promise<void>[] = [];
  async function handle(conn: Deno.Conn): Promise<void> {
    const reader = new FrameReader(conn);
    const send = (...messages: Message[]) =>
      Promise.all(messages.map((m) => writeAll(conn, encodeMessage(m))));
    try {
      const hello = await reader.readMessage();
      assert.equal(hello?.type, "hello");
      const offer = await reader.readMessage();
      assert.equal(offer?.type, "digests");
      await send(
        {
          type: "hello",
          minVersion: PROTOCOL_VERSION,
          maxVersion: PROTOCOL_VERSION,
          flags: 0,
          nonce: new Uint8Array(32),
        },
        { type: "digests", algorithms: ["sha256"] },
      );
      while (true) {
        const message = await reader.readMessage();
        if (message === null) break;
        if (message.type === "stat") {
          await send({
            type: "info",
            entry: { name: "tree", kind: "dir", size: 0, mtime: 0 },
          });
        } else if (message.type === "list") {
          await writeAll(conn, encodeMessage({ type: "entries", entries }));
          await writeAll(
            conn,
            encodeMessage({ type: "end", count: entries.length }),
          );
        } else if (message.type === "get") {
          requested.push(message.path);
          await writeAll(
            conn,
            encodeMessage({ type: "data", size: 5, offset: 0, mtime: 0 }),
          );
          await writeAll(conn, body);
          await writeAll(conn, encodeMessage({ type: "hash", digest: digest }));
        } else {
          break;
        }
      }
    } catch {
      // The client went away.
    } finally {
      conn.close();
    }
  }
  const accepting = (async () => {
    for await (const conn of listener) handlers.push(handle(conn));
  })();
  try {
    await fn((listener.addr as Deno.NetAddr).port, requested);
  } finally {
    listener.close();
    await accepting;
    await Promise.all(handlers);
  }
}

Deno.test("client.ts get -r writes nothing outside DEST whatever names a hostile server lists", async () => {
  const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
  try {
    await Deno.mkdir(`${base}/outside`);
    await Deno.mkdir(`${base}/dest`);
    await Deno.symlink(`${base}/outside`, `${base}/dest/link`);
    const file = (name: string): Entry => ({
      name,
      kind: "file",
      size: 5,
      mtime: 0,
    });
    const entries: Entry[] = [
      ...HOSTILE_NAMES.filter((name) => name !== "").map(file),
      { name: "link", kind: "dir", size: 0, mtime: 0 },
      file("link/x.txt"),
      file("~/.ssh/authorized_keys"),
      file("ok.txt"),
    ];
    await withHostileServer(entries, async (port, requested) => {
      const { code, stdout, stderr } = await runClient(
        ["--port", String(port), "get", "-r", "tree", "-o", `${base}/dest`],
      );
      assert.equal(code, 1);
      assert.equal(stdout, "");
      assert.deepEqual(requested, [
        "tree/~/.ssh/authorized_keys",
        "tree/ok.txt",
      ]);
      const lines = stderr.trim().split("\n");
      assert.equal(lines.at(-1), "ferry: get -r tree: 11 of 13 files failed");
      for (
        const name of [
          "../evil",
          "/abs",
          "a/../../x",
          "C:/x",
          "nul\\x00byte",
        ]
      ) {
        assert.ok(
          lines.some((line) =>
            line.startsWith(`ferry: get tree/${name}: forbidden`)
          ),
          `${name} reported in:\n${stderr}`,
        );
      }
      assert.ok(
        lines.some((line) =>
          line.startsWith("ferry: get tree/link/x.txt: forbidden")
        ),
      );
    });
    assert.deepEqual([...Deno.readDirSync(`${base}/outside`)], []);
    const top = [...Deno.readDirSync(base)].map((entry) => entry.name).sort();
    assert.deepEqual(top, ["dest", "outside"]);
    assert.equal(await Deno.readTextFile(`${base}/dest/ok.txt`), "pwned");
    assert.equal(
      await Deno.readTextFile(`${base}/dest/~/.ssh/authorized_keys`),
      "pwned",
    );
    const inDest = [...Deno.readDirSync(`${base}/dest`)].map((e) => e.name)
      .sort();
    assert.deepEqual(inDest, ["link", "ok.txt", "~"]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
