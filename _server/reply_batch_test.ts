import assert from "node:assert/strict";
import {
  REPLY_BATCH_BYTES,
  REPLY_ROOM_BYTES,
  ReplyBatch,
} from "./reply_batch.ts";
import { FRAMES_BYTES, SMALL_FILE_BYTES } from "./small_get.ts";

/** A sink that records each write and completes it when told. */
function slowSink() {
  const writes: number[][] = [];
  let release: (() => void) | undefined;
  return {
    writes,
    release: () => release?.(),
    write(p: Uint8Array): Promise<number> {
      writes.push([...p.subarray(0, 4)].concat(p.length));
      return new Promise((resolve) => {
        release = () => resolve(p.length);
      });
    },
  };
}

Deno.test("ReplyBatch.room() takes a reply in place behind the queued ones, written in one write", async () => {
  const writes: Uint8Array[] = [];
  const batch = new ReplyBatch({
    write: (p: Uint8Array) => {
      writes.push(p.slice());
      return Promise.resolve(p.length);
    },
  });
  await batch.queue(new Uint8Array([1, 2]));
  assert(batch.roomy);
  const room = batch.room();
  assert.equal(room.length, REPLY_ROOM_BYTES);
  room.set([3, 4, 5]);
  batch.commit(3);
  await batch.flush();
  assert.deepEqual(writes, [new Uint8Array([1, 2, 3, 4, 5])]);
});

Deno.test("ReplyBatch is not roomy once a batch is held or while it is written", async () => {
  const sink = slowSink();
  const batch = new ReplyBatch(sink);
  while (batch.roomy) {
    batch.room().fill(7, 0, 1024);
    batch.commit(1024);
  }
  assert.equal(batch.roomy, false);
  assert.throws(() => batch.room(), RangeError);
  assert.throws(() => batch.commit(1), RangeError);
  const flushed = batch.flush();
  // Nothing is held now, but the buffer is still being written.
  assert.equal(batch.roomy, false);
  sink.release();
  await flushed;
  assert(batch.roomy);
  assert.deepEqual(sink.writes, [[7, 7, 7, 7, REPLY_BATCH_BYTES]]);
});

Deno.test("REPLY_ROOM_BYTES holds the largest reply written in place: a small file and its frames", () => {
  // Were it smaller, answerHeldNow would find no room for the largest
  // small files and quietly leave them to the awaited path.
  assert.ok(REPLY_ROOM_BYTES >= SMALL_FILE_BYTES + FRAMES_BYTES);
});
