/**
 * The client against servers written to hurt it: names and messages full of
 * terminal escapes, an endless listing, and a classic server that sends its
 * size slowly or bytes past it. Nothing of theirs may reach the terminal
 * raw, memory stays bounded, and no wrong file is kept.
 *
 * @module
 */

import assert from "node:assert/strict";
import { classicGet, connect, FerryError } from "../client.ts";
import {
  encodeMessage,
  FrameReader,
  type Message,
  writeAll,
} from "../protocol.ts";
import { acceptHandshake } from "./_util/server.ts";
import { getTree } from "../_client/tree_get.ts";
import { digestOf } from "../_common/digest.ts";
import { within } from "./_util/faults.ts";
import { CLIENT_SCRIPT, exists, runScript, withTempDir } from "./_util/util.ts";

/** Screen clear, window title, cursor home, a forged line, a C1 CSI. */
const EVIL = "a\x1b[2J\x1b]0;owned\x07\r\nERROR forged\x9b31mz";

/** A hostile ferry server: HELLO, then `answer` for every request. */
function startHostileServer(
  answer: (request: Message, conn: Deno.Conn) => Promise<void>,
): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sessions = new Set<Promise<void>>();
  const conns = new Set<Deno.Conn>();
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const session = (async () => {
        const reader = new FrameReader(conn);
        try {
          await acceptHandshake(reader, conn);
          while (true) {
            const request = await reader.readMessage();
            if (request === null) break;
            await answer(request, conn);
          }
        } catch {
          // The client left.
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed already
          }
        }
      })();
      sessions.add(session);
      session.finally(() => sessions.delete(session));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
      await accepting.catch(() => {});
      await Promise.allSettled([...sessions]);
    },
  };
}

function assertNoControls(text: string, what: string): void {
  // deno-lint-ignore no-control-regex
  const raw = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/.exec(text);
  assert.equal(
    raw,
    null,
    `${what} holds a raw control: ${JSON.stringify(text)}`,
  );
}

Deno.test("client.ts ls prints hostile names and error messages with their controls escaped, and --json exactly", async () => {
  const server = startHostileServer(async (request, conn) => {
    if (request.type === "list" && request.path === "") {
      await writeAll(
        conn,
        encodeMessage({
          type: "entries",
          entries: [{ name: EVIL, kind: "file", size: 1, mtime: 0 }],
        }),
      );
      await writeAll(conn, encodeMessage({ type: "end", count: 1 }));
    } else {
      await writeAll(
        conn,
        encodeMessage({ type: "error", code: "NOT_FOUND", message: EVIL }),
      );
    }
  });
  try {
    const port = String(server.port);
    const listed = await runScript(CLIENT_SCRIPT, ["--port", port, "ls"]);
    assert.equal(listed.code, 0, listed.stderr);
    assertNoControls(listed.stdout, "ls output");
    assert.equal(listed.stdout.trim().split("\n").length, 1);
    assert.match(listed.stdout, /a\\x1b\[2J\\x1b\]0;owned\\x07\\x0d\\x0aERROR/);
    const json = await runScript(CLIENT_SCRIPT, [
      "--port",
      port,
      "ls",
      "--json",
    ]);
    assert.equal(json.code, 0, json.stderr);
    assertNoControls(json.stdout, "ls --json output");
    assert.equal(JSON.parse(json.stdout)[0].name, EVIL);
    const failed = await runScript(CLIENT_SCRIPT, ["--port", port, "ls", "x"]);
    assert.equal(failed.code, 1);
    assertNoControls(failed.stderr, "error output");
    assert.equal(failed.stderr.trim().split("\n").length, 1, failed.stderr);
  } finally {
    await server.close();
  }
});

Deno.test("FerryClient list() refuses an endless listing past maxListEntries with TOO_LARGE", async () => {
  const server = startHostileServer(async (_request, conn) => {
    const frame = encodeMessage({
      type: "entries",
      entries: Array.from({ length: 100 }, (_, i) => ({
        name: `n${i}`,
        kind: "file" as const,
        size: 0,
        mtime: 0,
      })),
    });
    // Until the client gives up: the write fails then.
    while (true) await writeAll(conn, frame);
  });
  try {
    const client = await connect({ port: server.port, maxListEntries: 5000 });
    try {
      const error = await within(
        client.list().then(() => undefined, (e) => e),
        10_000,
        "list() of an endless listing",
      );
      assert.ok(error instanceof FerryError, String(error));
      assert.equal(error.code, "TOO_LARGE");
    } finally {
      client.close();
    }
  } finally {
    await server.close();
  }
});

Deno.test("getTree() sends its first GETs while the listing is still arriving", async () => {
  // This server ends its listing only once a GET has arrived: a client
  // that waited for the END before requesting files would wait forever.
  const bytes = new TextEncoder().encode("early");
  const server = startHostileServer(async (request, conn) => {
    if (request.type === "stat") {
      await writeAll(
        conn,
        encodeMessage({
          type: "info",
          entry: { name: "t", kind: "dir", size: 0, mtime: 0 },
        }),
      );
    } else if (request.type === "list") {
      await writeAll(
        conn,
        encodeMessage({
          type: "entries",
          entries: [{ name: "a.txt", kind: "file", size: 5, mtime: 0 }],
        }),
      );
    } else if (request.type === "get" && request.path === "t/a.txt") {
      await writeAll(conn, encodeMessage({ type: "end", count: 1 }));
      await writeAll(
        conn,
        encodeMessage({ type: "data", size: 5, offset: 0, mtime: 0 }),
      );
      await writeAll(conn, bytes);
      await writeAll(
        conn,
        encodeMessage({
          type: "hash",
          digest: await digestOf("xxh3-128", bytes),
        }),
      );
    }
  });
  try {
    await withTempDir(async (dir) => {
      await using client = await connect({ port: server.port });
      const report = await within(
        getTree(client, "t", `${dir}/copy`),
        10_000,
        "getTree() from a server that waits for a GET before END",
      );
      assert.equal(report.failed, 0);
      assert.equal(await Deno.readTextFile(`${dir}/copy/a.txt`), "early");
    });
  } finally {
    await server.close();
  }
});

/** A classic server: `EXISTS`, then `parts` (each after its delay). */
function startClassicServer(
  parts: { afterMs: number; bytes: Uint8Array; afterReady?: boolean }[],
): { port: number; done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      const buffer = new Uint8Array(1024);
      await conn.read(buffer); // the name
      await writeAll(conn, new TextEncoder().encode("EXISTS"));
      let readied = false;
      for (const part of parts) {
        if (part.afterReady && !readied) {
          await conn.read(buffer); // READY
          readied = true;
        }
        await new Promise((resolve) => setTimeout(resolve, part.afterMs));
        await writeAll(conn, part.bytes);
      }
      // Hold the connection open a moment, then close.
      await new Promise((resolve) => setTimeout(resolve, 300));
    } catch {
      // The client left first.
    } finally {
      conn.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

const encoder = new TextEncoder();

Deno.test("classicGet() keeps nothing when the size digits come 1.5 s apart", async () => {
  await withTempDir(async (dir) => {
    // "10", one digit at a time: a client that decides on "1" takes the
    // "0" for the file and must not keep it.
    const server = startClassicServer([
      { afterMs: 0, bytes: encoder.encode("1") },
      { afterMs: 1500, bytes: encoder.encode("0") },
      { afterMs: 600, bytes: new Uint8Array(10).fill(120), afterReady: true },
    ]);
    const error = await classicGet("f.bin", `${dir}/f.bin`, {
      port: server.port,
    }).then(() => undefined, (e) => e);
    await server.done;
    assert.ok(error instanceof FerryError, `kept a file: ${error}`);
    assert.equal(await exists(`${dir}/f.bin`), false);
  });
});

Deno.test("classicGet() keeps nothing when bytes past the size come late, before the close", async () => {
  await withTempDir(async (dir) => {
    const server = startClassicServer([
      { afterMs: 0, bytes: encoder.encode("3") },
      { afterMs: 0, bytes: encoder.encode("abc"), afterReady: true },
      { afterMs: 600, bytes: encoder.encode("EXTRA") },
    ]);
    const error = await classicGet("f.bin", `${dir}/f.bin`, {
      port: server.port,
    }).then(() => undefined, (e) => e);
    await server.done;
    assert.ok(error instanceof FerryError, `kept a file: ${error}`);
    assert.equal(error.code, "PROTOCOL");
    assert.equal(await exists(`${dir}/f.bin`), false);
  });
});
