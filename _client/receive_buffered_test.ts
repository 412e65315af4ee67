import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  receiveBuffered,
  receiveBufferedNow,
  wholeReplyBytes,
} from "./receive_buffered.ts";
import { nativeXxh3 } from "../_common/native_xxh3.ts";
import type { Receiver } from "./receiver.ts";
import type { SessionIo } from "./session_io.ts";
import { FerryError } from "../errors.ts";
import { encodeMessage, FrameReader } from "../protocol.ts";

const content = new TextEncoder().encode("hello, buffered reply\n");

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/** DATA, the bytes and HASH (of `digestOf` the bytes) as the server sends them. */
function reply(
  digest: Uint8Array = sha256(content),
  mtime = 1_700_000_000_000,
): Uint8Array {
  const data = encodeMessage({
    type: "data",
    size: content.length,
    offset: 0,
    mtime,
  });
  const hash = encodeMessage({ type: "hash", digest });
  const bytes = new Uint8Array(data.length + content.length + hash.length);
  bytes.set(data);
  bytes.set(content, data.length);
  bytes.set(hash, data.length + content.length);
  return bytes;
}

/** A session whose received bytes are `received`, all buffered. */
async function sessionWith(received: Uint8Array): Promise<{
  io: SessionIo;
  reader: FrameReader;
}> {
  let given = false;
  const reader = new FrameReader({
    read(p: Uint8Array): Promise<number | null> {
      if (given) return Promise.resolve(null);
      given = true;
      p.set(received);
      return Promise.resolve(received.length);
    },
  });
  await reader.peek();
  const kept = new WeakSet<object>();
  const io: SessionIo = {
    send: () => Promise.resolve(),
    expect: () => Promise.reject(new Error("not used")),
    source: reader,
    sink: { write: (p) => Promise.resolve(p.length) },
    digest: "sha256",
    eagerPut: false,
    buffers: () => [new Uint8Array(64), new Uint8Array(64)],
    recoverable: (error) => typeof error === "object" && kept.has(error!),
    keep: (error) => {
      kept.add(error as object);
      return error;
    },
    close: () => {},
    buffered: () => reader.bufferedBytes(),
    consume: (n) => reader.skip(n),
  };
  return { io, reader };
}

/** A receiver that records what happens to it. */
function recorder(failWrite = false): Receiver & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    writer: {
      write(p: Uint8Array): Promise<number> {
        if (failWrite) {
          return Promise.reject(new FerryError("LOCAL", "Disk full"));
        }
        log.push(`write ${new TextDecoder().decode(p)}`);
        return Promise.resolve(p.length);
      },
    },
    commit(mtime?: number): Promise<void> {
      log.push(`commit ${mtime}`);
      return Promise.resolve();
    },
    discard(): Promise<void> {
      log.push("discard");
      return Promise.resolve();
    },
  };
}

Deno.test("receiveBuffered() takes a wholly buffered reply, checks its digest and commits", async () => {
  const next = encodeMessage({ type: "ok" });
  const all = new Uint8Array([...reply(), ...next]);
  const { io, reader } = await sessionWith(all);
  const receiver = recorder();
  const result = await receiveBuffered(io, receiver, { path: "a.txt" });
  assert.equal(result?.bytes, content.length);
  assert.deepEqual(receiver.log, [
    `write ${new TextDecoder().decode(content)}`,
    "commit 1700000000000",
  ]);
  assert.equal(reader.buffered, next.length); // the next frame is left
  assert.equal((await reader.readMessage())?.type, "ok");
});

Deno.test("receiveBuffered() leaves a reply with a wrong digest, or a partial one, to receiveFile", async () => {
  const wrong = reply(new Uint8Array(32));
  for (const received of [wrong, reply().subarray(0, reply().length - 1)]) {
    const { io, reader } = await sessionWith(received);
    const receiver = recorder();
    assert.equal(
      await receiveBuffered(io, receiver, { path: "a.txt" }),
      undefined,
    );
    assert.deepEqual(receiver.log, []);
    assert.equal(reader.buffered, received.length); // nothing consumed
  }
});

Deno.test("receiveBuffered() consumes the reply when the local write fails, and the error is recoverable", async () => {
  const { io, reader } = await sessionWith(reply());
  const receiver = recorder(true);
  const error = await receiveBuffered(io, receiver, { path: "a.txt" }).then(
    () => undefined,
    (error) => error,
  );
  assert.ok(error instanceof FerryError && error.code === "LOCAL");
  assert.ok(io.recoverable(error));
  assert.deepEqual(receiver.log, ["discard"]);
  assert.equal(reader.buffered, 0);
});

Deno.test("receiveBuffered() reads the times decodeFrame reads (before 1970, far ahead, the range's ends)", async () => {
  for (
    const mtime of [-1, -86_400_000, 2 ** 50 + 7, 2 ** 53 - 1, -(2 ** 53) + 1]
  ) {
    const { io } = await sessionWith(reply(sha256(content), mtime));
    const receiver = recorder();
    const result = await receiveBuffered(io, receiver, { path: "a.txt" });
    assert.equal(result?.bytes, content.length);
    assert.equal(receiver.log.at(-1), `commit ${mtime}`);
  }
});

Deno.test("receiveBufferedNow() saves a buffered XXH3 reply whole without a promise, and leaves others", async () => {
  const native = nativeXxh3();
  const { io, reader } = await sessionWith(reply(native?.hash(content)));
  const xxh3: SessionIo = { ...io, digest: "xxh3-128" };
  const saved: string[] = [];
  const receiver = {
    ...recorder(),
    saveWhole(bytes: Uint8Array, mtime: number): void {
      saved.push(`${new TextDecoder().decode(bytes)}@${mtime}`);
    },
  };
  // Without saveWhole, or in a SHA-256 session: not taken here.
  assert.equal(receiveBufferedNow(xxh3, recorder(), { path: "a" }), undefined);
  assert.equal(receiveBufferedNow(io, receiver, { path: "a" }), undefined);
  const result = receiveBufferedNow(xxh3, receiver, { path: "a" });
  if (native === undefined) {
    assert.equal(result, undefined); // no libxxhash: the async path does it
    return;
  }
  assert.equal(result?.algorithm, "xxh3-128");
  assert.deepEqual(saved, [
    `${new TextDecoder().decode(content)}@1700000000000`,
  ]);
  assert.equal(reader.buffered, 0);
});

Deno.test("wholeReplyBytes() tells how much of a small reply cut by a read to wait for", () => {
  const whole = reply(); // a SHA-256 HASH: 32 bytes
  const needed = whole.length;
  assert.equal(wholeReplyBytes(whole.subarray(0, 10), "sha256", 100), 29);
  assert.equal(wholeReplyBytes(new Uint8Array(0), "sha256", 100), 29);
  assert.equal(wholeReplyBytes(whole.subarray(0, 40), "sha256", 100), needed);
  assert.equal(wholeReplyBytes(whole, "sha256", 100), needed);
  // Larger than asked for, or not a DATA frame: not waited for.
  assert.equal(wholeReplyBytes(whole, "sha256", content.length - 1), undefined);
  assert.equal(
    wholeReplyBytes(encodeMessage({ type: "ok" }), "sha256", 100),
    undefined,
  );
});
