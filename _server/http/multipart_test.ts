import assert from "node:assert/strict";
import { BodyReader } from "./body_reader.ts";
import { formBoundary, MultipartReader } from "./multipart.ts";

/** A body delivered in chunks of `step` bytes. */
function chunked(bytes: Uint8Array, step: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + step));
      at += step;
    },
  });
}

const encoder = new TextEncoder();

Deno.test("MultipartReader reads parts whatever the chunking, data that looks like a boundary included", async () => {
  for (
    const [step, size] of [[1, 3000], [7, 20_000], [4096, 300_000], [
      1 << 20,
      600_000,
    ]]
  ) {
    await roundTrip(step, size);
  }
});

async function roundTrip(step: number, size: number): Promise<void> {
  const boundary = "----b0undary";
  const data = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
  // Prefixes of the delimiter, which must be passed on as data.
  const tricky = encoder.encode(
    `x\r\n------b0undar\r\n--${boundary.slice(0, -1)}\r\n\r\n-`,
  );
  const body = [
    encoder.encode(`preamble\r\n--${boundary}\r\n`),
    encoder.encode(`Content-Disposition: form-data; name="note"\r\n\r\nhi`),
    encoder.encode(`\r\n--${boundary}\r\n`),
    encoder.encode(
      `Content-Disposition: form-data; name="file"; filename="a \\"b\\".bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    data,
    encoder.encode(`\r\n--${boundary}\r\n`),
    encoder.encode(
      `Content-Disposition: form-data; name="file"; filename="t.txt"\r\n\r\n`,
    ),
    tricky,
    encoder.encode(`\r\n--${boundary}--\r\nepilogue`),
  ];
  const whole = new Uint8Array(body.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const part of body) {
    whole.set(part, at);
    at += part.length;
  }
  assert.equal(
    formBoundary(`multipart/form-data; boundary=${boundary}`),
    boundary,
  );
  {
    const form = new MultipartReader(
      new BodyReader(chunked(whole, step)),
      boundary,
    );
    const seen: { name: string; filename?: string; bytes: Uint8Array }[] = [];
    while (true) {
      const part = await form.nextPart();
      if (part === null) break;
      const chunks: Uint8Array[] = [];
      await form.readData((chunk) => {
        chunks.push(chunk.slice());
        return Promise.resolve();
      });
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        bytes.set(c, o);
        o += c.length;
      }
      seen.push({ name: part.name, filename: part.filename, bytes });
    }
    assert.equal(seen.length, 3, `step ${step}`);
    assert.equal(new TextDecoder().decode(seen[0].bytes), "hi");
    assert.equal(seen[1].filename, 'a "b".bin');
    assert.deepEqual(seen[1].bytes, data, `step ${step}`);
    assert.deepEqual(seen[2].bytes, tricky, `step ${step}`);
  }
}

Deno.test("formBoundary() refuses other content types", () => {
  assert.throws(() => formBoundary("text/plain"), /multipart/);
  assert.throws(() => formBoundary(null), /multipart/);
  assert.throws(() => formBoundary("multipart/form-data"), /multipart/);
});
