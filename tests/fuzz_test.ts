/**
 * Seeded fuzzing of both sides. The server gets at least 10,000 random and
 * mutated frames over many connections and must stay up, bounded in memory
 * and correct; the client meets a hostile server that answers with random
 * and mutated frames and must always settle with a `FerryError`, never
 * writing outside its destination folder nor keeping an unverified file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect, type FerryClient } from "../client.ts";
import { FerryError } from "../errors.ts";
import {
  encodeMessage,
  type Entry,
  FrameReader,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "../protocol.ts";
import { sha256, testBytes, treeNames, withServer } from "./_util/server.ts";
import { within } from "./_util/faults.ts";
import { Prng } from "./_util/util.ts";

const SERVER_SEED = 0xf0221;
const SERVER_CONNECTIONS = 500;
const FRAMES_PER_CONNECTION = 20;
const CLIENT_SEED = 0xc1e47;
const CLIENT_SESSIONS = 1_000;
/**
 * Stated bounds on RSS growth. Server and fuzzer share the process, and RSS
 * includes what the allocator keeps after the garbage collector freed it
 * (hundreds of 1 MiB buffers come and go), so the bounds are loose; a leak
 * of one connection's buffers (2 MiB each, 500 connections) still breaks
 * them many times over. Measured on 2 cores: about 250 MiB in all and
 * under 150 MiB in the second half.
 */
const RSS_GROWTH_BOUND = 384 * 1024 * 1024;
const RSS_SECOND_HALF_BOUND = 224 * 1024 * 1024;

const PATHS = [
  "",
  "a.txt",
  "d",
  "d/b.bin",
  "missing",
  "../canary.txt",
  "d/../a.txt",
  "up/new.txt",
  "new.bin",
  "CON",
  "x".repeat(300),
  "é/ü",
];
/** Upload targets that accept a PUT, so its data is never taken for frames. */
const PUT_TARGETS = ["new.bin", "d/c.bin", "a.txt", "d/e.bin"];

/** A valid request, as bytes (a PUT is followed by its data and HASH). */
function validRequest(rng: Prng): Uint8Array[] {
  const path = rng.pick(PATHS);
  switch (rng.int(5)) {
    case 0:
      return [
        encodeMessage({ type: "list", path, recursive: rng.chance(0.5) }),
      ];
    case 1:
      return [encodeMessage({ type: "stat", path })];
    case 2:
      return [encodeMessage({ type: "get", path, offset: rng.int(4) * 1000 })];
    case 3:
      return [encodeMessage({ type: "mkdir", path: rng.pick(["up", "up/x"]) })];
    default: {
      const data = rng.bytes(rng.int(3000));
      const right = rng.chance(0.8);
      return [
        encodeMessage({
          type: "put",
          path: rng.pick(PUT_TARGETS),
          size: data.length,
          overwrite: true,
          resume: false,
          mtime: rng.chance(0.5) ? rng.int(2 ** 40) : undefined,
        }),
        data,
        encodeMessage({
          type: "hash",
          digest: right ? sha256(data) : rng.bytes(32),
        }),
      ];
    }
  }
}

/** One fuzzed frame (or frame-like bytes). */
function fuzzFrame(rng: Prng): Uint8Array[] {
  // Mostly valid requests, so that a connection lives for several frames
  // before a broken one makes the server close it.
  const roll = rng.int(100);
  if (roll < 88) return validRequest(rng);
  if (roll < 93) {
    // A valid frame with one byte (header or payload) broken.
    const [frame, ...rest] = validRequest(rng);
    const broken = frame.slice();
    const at = rng.int(broken.length);
    broken[at] = rng.chance(0.5)
      ? broken[at] ^ (1 << rng.int(8))
      : rng.int(256);
    return [broken, ...rest];
  }
  if (roll < 94) {
    // A truncated frame.
    const [frame] = validRequest(rng);
    return [frame.subarray(0, rng.int(frame.length))];
  }
  if (roll < 96) {
    // A huge or merely wrong declared length.
    const header = new Uint8Array(5 + rng.int(16));
    header[0] = rng.pick([0x10, 0x11, 0x12, 0x13, 0x14, 0x25, 0x00]);
    new DataView(header.buffer).setUint32(
      1,
      rng.pick([0xffffffff, 0x80000000, 1024 * 1024 + 1, rng.int(2 ** 32)]),
    );
    return [header];
  }
  if (roll < 98) return [rng.bytes(1 + rng.int(64))]; // garbage
  // A message only a server sends, or one out of place.
  const messages: Message[] = [
    { type: "ok" },
    { type: "end", count: rng.int(10) },
    { type: "data", size: rng.int(2 ** 40), offset: 0, mtime: 0 },
    { type: "ready", offset: rng.int(100) },
    { type: "hash", digest: rng.bytes(32) },
    { type: "auth", mac: rng.bytes(32) },
    { type: "error", code: "BUSY", message: "x" },
    {
      type: "hello",
      minVersion: rng.int(3),
      maxVersion: rng.int(3),
      flags: rng.int(4),
      nonce: rng.bytes(rng.int(33)),
    },
    {
      type: "entries",
      entries: [{ name: "x", kind: "file", size: 1, mtime: 0 }],
    },
  ];
  return [encodeMessage(rng.pick(messages))];
}

/** Drains a connection until it ends; returns how many bytes came. */
async function drain(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return total;
      total += n;
    }
  } catch {
    return total; // reset
  }
}

async function fuzzConnection(port: number, rng: Prng): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const received = drain(conn);
  let written = 0;
  try {
    const parts: Uint8Array[] = [];
    if (rng.chance(0.92)) {
      parts.push(encodeMessage({
        type: "hello",
        minVersion: PROTOCOL_VERSION,
        maxVersion: PROTOCOL_VERSION,
        flags: 0,
        nonce: rng.bytes(32),
      }));
      parts.push(encodeMessage({
        type: "digests",
        algorithms: [rng.pick(["xxh3-128", "sha256"])],
      }));
    }
    const frames: Uint8Array[][] = [];
    for (let i = 0; i < FRAMES_PER_CONNECTION; i++) frames.push(fuzzFrame(rng));
    try {
      for (const part of parts) await writeAll(conn, part);
      for (const frame of frames) {
        for (const part of frame) {
          // Split writes at random points: framing must not depend on them.
          let at = 0;
          while (at < part.length) {
            const end = Math.min(part.length, at + 1 + rng.int(part.length));
            await writeAll(conn, part.subarray(at, end));
            at = end;
          }
        }
        written++;
      }
      await conn.closeWrite();
    } catch {
      // The server closed on a bad frame: the rest is not needed.
    }
    await within(received, 15_000, "the server's side of a fuzzed connection");
  } finally {
    conn.close();
  }
  return written;
}

Deno.test("serve() survives 10,000 fuzzed frames, stays bounded in memory and still serves byte for byte", async () => {
  const big = testBytes(300_000, 21);
  const originals = { "a.txt": "hello", "d/b.bin": big };
  await withServer(
    {
      allowUpload: true,
      files: originals,
      handshakeTimeoutMs: 3_000,
      idleTimeoutMs: 3_000,
    },
    async (t) => {
      const baseBefore = await treeNames(t.base);
      const rng = new Prng(SERVER_SEED);
      // Warm up (code paths compiled, buffers allocated) before measuring.
      await fuzzConnection(t.port, new Prng(1));
      const rssBefore = Deno.memoryUsage().rss;
      let sent = 0;
      let next = 0;
      let rssMiddle = 0;
      const started = performance.now();
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < SERVER_CONNECTIONS) {
          if (++next === SERVER_CONNECTIONS / 2) {
            rssMiddle = Deno.memoryUsage().rss;
          }
          await fuzzConnection(t.port, new Prng(rng.int(2 ** 32)));
          sent += FRAMES_PER_CONNECTION;
        }
      }));
      const seconds = (performance.now() - started) / 1000;
      const rssAfter = Deno.memoryUsage().rss;
      const rssGrowth = rssAfter - rssBefore;
      assert.ok(
        rssAfter - rssMiddle < RSS_SECOND_HALF_BOUND,
        `RSS grew by ${
          (rssAfter - rssMiddle) / 2 ** 20
        } MiB in the second half`,
      );
      assert.ok(sent >= 10_000, `${sent} frames`);
      assert.ok(seconds < 30, `${seconds} s`);
      assert.ok(
        rssGrowth < RSS_GROWTH_BOUND,
        `RSS grew by ${(rssGrowth / 2 ** 20).toFixed(1)} MiB`,
      );
      console.log(
        `fuzz: ${sent} frames on ${SERVER_CONNECTIONS} connections in ${
          seconds.toFixed(1)
        } s; ${t.logs.length} requests answered; RSS growth ${
          (rssGrowth / 2 ** 20).toFixed(1)
        } MiB (${
          ((rssAfter - rssMiddle) / 2 ** 20).toFixed(1)
        } MiB in the second half)`,
      );

      // Still alive and correct.
      const dir = await Deno.makeTempDir({ prefix: "ferry_test_" });
      try {
        await using client = await connect({ port: t.port });
        await client.get("d/b.bin", `${dir}/b.bin`);
        assert.deepEqual(await Deno.readFile(`${dir}/b.bin`), big);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
      // Nothing was written outside the root (inside it, mutated PUT
      // frames may well have named new files), the canary is intact, and
      // no request failed inside the server.
      const outside = (await treeNames(t.base)).filter((name) =>
        !name.startsWith("root/")
      );
      assert.deepEqual(
        outside,
        baseBefore.filter((name) => !name.startsWith("root/")),
      );
      assert.equal(await Deno.readTextFile(`${t.base}/canary.txt`), t.canary);
      assert.ok(!t.logs.some((event) => event.result === "INTERNAL"));
    },
  );
});

// ---------------------------------------------------------------------------
// The client against a hostile server

const HOSTILE_NAMES = [
  "a",
  "../x",
  "/etc/passwd",
  "d/../../y",
  "",
  "ok.txt",
];
const ERROR_CODES = ["NOT_FOUND", "BUSY", "WHATEVER", "INTEGRITY", "A"];

function randomEntry(rng: Prng): Entry {
  return {
    name: rng.pick(HOSTILE_NAMES),
    kind: rng.chance(0.5) ? "file" : "dir",
    size: rng.pick([0, 1, rng.int(2 ** 40), Number.MAX_SAFE_INTEGER]),
    mtime: rng.pick([0, -1, 8.64e15, -8.64e15, 2 ** 53 - 1, rng.int(2 ** 41)]),
  };
}

/** What the hostile server sends after the client's request. */
function hostileReply(
  rng: Prng,
  request: Message | null,
  content: Uint8Array,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  const digest = sha256(content);
  const size = content.length;
  switch (request?.type) {
    case "get": {
      const claimed = rng.pick([size, size, size + 1, size - 1, 2 ** 40, 0]);
      out.push(encodeMessage({
        type: "data",
        size: Math.max(0, claimed),
        offset: rng.chance(0.9) ? 0 : rng.int(size + 2),
        mtime: rng.pick([0, 1.7e12, 8.64e15, -8.64e15, 2 ** 53 - 1, -1]),
      }));
      const sent = rng.pick([size, size, size, rng.int(size + 1), size + 5]);
      const bytes = new Uint8Array(sent);
      bytes.set(content.subarray(0, Math.min(sent, size)));
      out.push(bytes);
      out.push(encodeMessage({
        type: "hash",
        digest: rng.chance(0.6) ? digest : rng.bytes(rng.pick([16, 32])),
      }));
      break;
    }
    case "list": {
      let count = 0;
      for (let i = rng.int(3); i > 0; i--) {
        const entries = Array.from(
          { length: rng.int(4) },
          () => randomEntry(rng),
        );
        count += entries.length;
        out.push(encodeMessage({ type: "entries", entries }));
      }
      out.push(encodeMessage({
        type: "end",
        count: rng.chance(0.6) ? count : rng.int(10),
      }));
      break;
    }
    case "stat":
      out.push(encodeMessage({ type: "info", entry: randomEntry(rng) }));
      break;
    case "put":
      out.push(encodeMessage({
        type: "ready",
        offset: rng.chance(0.8) ? 0 : rng.int(request.size + 3),
      }));
      break;
    default:
      break;
  }
  if (rng.chance(0.15)) {
    out.unshift(encodeMessage({
      type: "error",
      code: rng.pick(ERROR_CODES),
      message: "hostile",
    }));
  }
  if (rng.chance(0.1)) {
    out.unshift(encodeMessage(rng.pick<Message>([
      { type: "ok" },
      { type: "ready", offset: 0 },
      { type: "end", count: 1 },
      { type: "hash", digest: digest },
    ])));
  }
  const all = new Uint8Array(out.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of out) {
    all.set(part, at);
    at += part.length;
  }
  let bytes = all;
  const mutation = rng.int(10);
  if (mutation < 3 && bytes.length > 0) {
    bytes = bytes.slice();
    bytes[rng.int(bytes.length)] ^= 1 << rng.int(8); // flip a bit
  } else if (mutation === 3) {
    bytes = bytes.subarray(0, rng.int(bytes.length + 1)); // truncate
  } else if (mutation === 4) {
    const huge = new Uint8Array(5);
    huge[0] = rng.pick([0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x03]);
    new DataView(huge.buffer).setUint32(1, 0xfffffff0);
    bytes = new Uint8Array([
      ...bytes.subarray(0, rng.int(bytes.length + 1)),
      ...huge,
    ]);
  } else if (mutation === 5) {
    bytes = new Uint8Array([...bytes, ...rng.bytes(1 + rng.int(40))]);
  }
  return [bytes];
}

/** Serves one hostile session: HELLO, the request, a fuzzed reply. */
async function hostileSession(conn: Deno.Conn, rng: Prng): Promise<void> {
  const content = rng.bytes(rng.int(5000));
  const reader = new FrameReader(conn);
  try {
    await reader.readMessage(); // the client's HELLO
    await reader.readMessage(); // the client's DIGESTS (sha256 only)
    const helloRoll = rng.int(20);
    const hello = helloRoll === 0
      ? encodeMessage({ type: "error", code: "BUSY", message: "busy" })
      : encodeMessage({
        type: "hello",
        minVersion: helloRoll === 1 ? 1 : 2,
        maxVersion: helloRoll === 1 ? 1 : 2,
        flags: helloRoll === 2 ? 1 : 0,
        nonce: rng.bytes(32),
      });
    await writeAll(conn, hello);
    // Mostly the algorithm offered; sometimes one that was not, two, or
    // another frame in its place.
    const digestRoll = rng.int(20);
    await writeAll(
      conn,
      encodeMessage(
        digestRoll === 0 ? { type: "ok" } : {
          type: "digests",
          algorithms: digestRoll === 1
            ? ["xxh3-128"]
            : digestRoll === 2
            ? ["sha256", "xxh3-128"]
            : ["sha256"],
        },
      ),
    );
    const request = await reader.readMessage();
    if (request?.type === "put" && rng.chance(0.5)) {
      // Acknowledge, take the bytes and the HASH, answer something.
      await writeAll(conn, encodeMessage({ type: "ready", offset: 0 }));
      const sink = new Uint8Array(64 * 1024);
      let left = request.size;
      while (left > 0) {
        const n = await reader.read(
          sink.subarray(0, Math.min(left, sink.length)),
        );
        if (n === null) break;
        left -= n;
      }
      await reader.readMessage();
      await writeAll(
        conn,
        encodeMessage(rng.pick<Message>([
          { type: "ok" },
          { type: "error", code: "INTEGRITY", message: "no" },
          { type: "hash", digest: rng.bytes(32) },
        ])),
      );
    } else {
      for (const part of hostileReply(rng, request, content)) {
        await writeAll(conn, part);
      }
    }
    await conn.closeWrite();
    await drain(conn);
  } catch {
    // The client gave up first: fine.
  } finally {
    conn.close();
  }
}

Deno.test("FerryClient settles every call against a hostile server with a FerryError and keeps only verified files", async () => {
  const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serverRng = new Prng(CLIENT_SEED ^ 0x5a5a);
  const sessions = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const task: Promise<void> = hostileSession(
          conn,
          new Prng(serverRng.int(2 ** 32)),
        ).finally(() => sessions.delete(task));
        sessions.add(task);
      }
    } catch {
      // Listener closed.
    }
  })();
  const dest = `${base}/dest`;
  await Deno.mkdir(dest);
  await Deno.writeFile(`${base}/upload.bin`, testBytes(3000, 4));
  const rng = new Prng(CLIENT_SEED);
  const outcomes = new Map<string, number>();
  const verified = new Map<string, string>();
  try {
    for (let i = 0; i < CLIENT_SESSIONS; i++) {
      const op = rng.int(5);
      const target = `${dest}/f${i}`;
      let client: FerryClient | undefined;
      const run = async (): Promise<string> => {
        client = await connect({ port: listener.addr.port, digest: "sha256" });
        switch (op) {
          case 0:
            await client.list("", { recursive: rng.chance(0.5) });
            return "list";
          case 1:
            await client.stat("a");
            return "stat";
          case 2: {
            const result = await client.get("a", target);
            assert.equal(result.algorithm, "sha256");
            verified.set(target, result.digest);
            return "get";
          }
          case 3: {
            let bytes = 0;
            await client.get("a", {
              write(p: Uint8Array): Promise<number> {
                bytes += p.length;
                return Promise.resolve(p.length);
              },
            });
            return "get-writer";
          }
          default:
            await client.put(`${base}/upload.bin`, "up.bin");
            return "put";
        }
      };
      let outcome: string;
      try {
        outcome = `${await within(run(), 10_000, `client session ${i}`)} ok`;
      } catch (error) {
        assert.ok(
          error instanceof FerryError,
          `session ${i} (op ${op}) threw ${String(error)}`,
        );
        outcome = error.code;
      } finally {
        (client as FerryClient | undefined)?.close();
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  } finally {
    listener.close();
    await accepting;
    while (sessions.size > 0) await Promise.allSettled([...sessions]);
  }
  try {
    console.log(
      `client fuzz: ${CLIENT_SESSIONS} sessions: ${
        [...outcomes].sort().map(([k, v]) => `${k} ${v}`).join(", ")
      }`,
    );
    // Nothing outside dest; in dest only verified files and parts.
    assert.deepEqual(
      (await treeNames(base)).filter((name) => !name.startsWith("dest/")),
      ["dest", "upload.bin"],
    );
    for await (const entry of Deno.readDir(dest)) {
      assert.ok(entry.isFile, entry.name);
      const path = `${dest}/${entry.name}`;
      if (/^f\d+$/.test(entry.name)) {
        const digest = createHash("sha256").update(await Deno.readFile(path))
          .digest("hex");
        assert.equal(verified.get(path), digest, `${entry.name} unverified`);
      } else {
        assert.match(entry.name, /^f\d+\.part/, entry.name);
      }
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
