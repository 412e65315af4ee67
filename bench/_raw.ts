/**
 * The benchmark's baseline for the Deno runtime: a raw TCP read/write loop
 * with no protocol and no hash, one reused 1 MiB buffer on each side.
 *
 * The server sends one fixed file to every connection and closes it; the
 * client writes everything it receives into a file until the server closes.
 *
 * ```sh
 * deno run -A bench/_raw.ts serve FILE        # prints tcp://127.0.0.1:PORT
 * deno run -A bench/_raw.ts get PORT DEST
 * ```
 *
 * Its buffers come from `bulkBuffer` like ferry's own, off the page
 * boundary: a page-aligned buffer makes every kernel copy 3-4x slower on
 * this project's AMD machine (see `BULK_BUFFER_SKEW`), and a baseline that
 * loses to its own buffer placement would flatter ferry.
 *
 * @module
 */

import { BULK_BUFFER_BYTES, bulkBuffer } from "../_common/copy.ts";

const BUFFER_BYTES = BULK_BUFFER_BYTES;

async function writeAll(
  writer: { write(p: Uint8Array): Promise<number> },
  chunk: Uint8Array,
): Promise<void> {
  for (let at = 0; at < chunk.length;) {
    at += await writer.write(chunk.subarray(at));
  }
}

async function copy(
  reader: { read(p: Uint8Array): Promise<number | null> },
  writer: { write(p: Uint8Array): Promise<number> },
  buffer: Uint8Array,
): Promise<number> {
  let total = 0;
  while (true) {
    const n = await reader.read(buffer);
    if (n === null) return total;
    await writeAll(writer, buffer.subarray(0, n));
    total += n;
  }
}

async function sendFile(conn: Deno.TcpConn, path: string): Promise<void> {
  const buffer = bulkBuffer(BUFFER_BYTES);
  try {
    using file = await Deno.open(path);
    await copy(file, conn, buffer);
  } catch {
    // a client that goes away is not the server's problem
  } finally {
    conn.close();
  }
}

async function serve(path: string): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`Listening on tcp://127.0.0.1:${listener.addr.port}`);
  const stop = () => listener.close();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  try {
    for await (const conn of listener) sendFile(conn, path);
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
  Deno.exit(0);
}

async function get(port: number, dest: string): Promise<void> {
  const buffer = bulkBuffer(BUFFER_BYTES);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    using file = await Deno.open(dest, {
      write: true,
      create: true,
      truncate: true,
    });
    await copy(conn, file, buffer);
  } finally {
    conn.close();
  }
}

async function main(): Promise<void> {
  const [mode, a, b] = Deno.args;
  if (mode === "serve" && a) return await serve(a);
  if (mode === "get" && a && b) return await get(Number(a), b);
  console.error("usage: _raw.ts serve FILE | get PORT DEST");
  Deno.exit(2);
}

if (import.meta.main) {
  await main();
}
