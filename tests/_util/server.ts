/**
 * Test helpers for the server: a temporary served folder with a running
 * server, and a raw protocol client that speaks frames by hand.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type ByteReader,
  encodeMessage,
  FrameReader,
  type HelloMessage,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "../../protocol.ts";
import {
  type FerryServer,
  serve,
  type ServeOptions,
  type ServerLogEvent,
} from "../../server.ts";
import { concat, xorshift32 } from "./util.ts";

/** A running server over a temporary folder. */
export interface TestServer {
  /** The server. */
  server: FerryServer;
  /** Its port. */
  port: number;
  /** Temporary folder holding `root/` (served) and `canary.txt` (not served). */
  base: string;
  /** The served folder. */
  root: string;
  /** Content of `base/canary.txt`, which no reply may ever contain. */
  canary: string;
  /** Every log event so far. */
  logs: ServerLogEvent[];
  /** Resolves with the first event (past or future) that matches. */
  waitForLog(
    match: (event: ServerLogEvent) => boolean,
  ): Promise<ServerLogEvent>;
}

/**
 * Runs `fn` with a fresh server over a fresh temporary folder, then stops
 * the server, awaits `finished` and removes the folder.
 */
export async function withServer(
  options: ServeOptions & { files?: Record<string, string | Uint8Array> },
  fn: (t: TestServer) => Promise<void>,
): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "ferry_test_" });
  const controller = new AbortController();
  let server: FerryServer | undefined;
  try {
    const root = `${base}/root`;
    await Deno.mkdir(root);
    const canary = `CANARY-${crypto.randomUUID()}`;
    await Deno.writeTextFile(`${base}/canary.txt`, canary);
    for (const [name, content] of Object.entries(options.files ?? {})) {
      const path = `${root}/${name}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), {
        recursive: true,
      });
      if (typeof content === "string") await Deno.writeTextFile(path, content);
      else await Deno.writeFile(path, content);
    }
    const logs: ServerLogEvent[] = [];
    const waiters: {
      match: (event: ServerLogEvent) => boolean;
      resolve: (event: ServerLogEvent) => void;
    }[] = [];
    server = await serve({
      port: 0,
      root,
      ...options,
      signal: controller.signal,
      onLog(event) {
        logs.push(event);
        for (const waiter of [...waiters]) {
          if (waiter.match(event)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(event);
          }
        }
        options.onLog?.(event);
      },
    });
    const waitForLog = (match: (event: ServerLogEvent) => boolean) => {
      const seen = logs.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<ServerLogEvent>((resolve) =>
        waiters.push({ match, resolve })
      );
    };
    await fn({
      server,
      port: server.addr.port,
      base,
      root,
      canary,
      logs,
      waitForLog,
    });
  } finally {
    controller.abort();
    await server?.finished;
    await Deno.remove(base, { recursive: true });
  }
}

/** SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/** Deterministic pseudo-random bytes. */
export function testBytes(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  const next = xorshift32(seed);
  for (let i = 0; i < size; i++) bytes[i] = next() & 0xff;
  return bytes;
}

/** Reads from a connection and keeps a copy of every byte when asked. */
class RecordingReader implements ByteReader {
  #conn: Deno.Conn;
  #chunks: Uint8Array[] | undefined;

  constructor(conn: Deno.Conn, record: boolean) {
    this.#conn = conn;
    this.#chunks = record ? [] : undefined;
  }

  async read(p: Uint8Array): Promise<number | null> {
    const n = await this.#conn.read(p);
    if (n !== null && this.#chunks) this.#chunks.push(p.slice(0, n));
    return n;
  }

  get transcript(): string {
    const decoder = new TextDecoder();
    return (this.#chunks ?? []).map((c) => decoder.decode(c)).join("");
  }
}

/** A hand-driven protocol client: frames in, frames out. */
export class RawClient {
  readonly conn: Deno.Conn;
  readonly reader: FrameReader;
  #recorder: RecordingReader;
  #closed = false;

  private constructor(conn: Deno.Conn, record: boolean) {
    this.conn = conn;
    this.#recorder = new RecordingReader(conn, record);
    this.reader = new FrameReader(this.#recorder);
  }

  /** Connects to `127.0.0.1:port`. */
  static async connect(port: number, record = false): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new RawClient(conn, record);
  }

  /** Connects and completes the handshake. */
  static async open(port: number, record = false): Promise<RawClient> {
    const client = await RawClient.connect(port, record);
    await client.hello();
    return client;
  }

  /** Everything received so far (when recording), decoded lossily. */
  get transcript(): string {
    return this.#recorder.transcript;
  }

  /** Sends one message. */
  async send(message: Message): Promise<void> {
    await writeAll(this.conn, encodeMessage(message));
  }

  /** Sends raw bytes. */
  async sendBytes(bytes: Uint8Array): Promise<void> {
    await writeAll(this.conn, bytes);
  }

  /** Reads the next message (or null at the end of the stream). */
  next(): Promise<Message | null> {
    return this.reader.readMessage();
  }

  /** Reads the next message and asserts its type. */
  async expect<T extends Message["type"]>(
    type: T,
  ): Promise<Extract<Message, { type: T }>> {
    const message = await this.next();
    assert.equal(
      message?.type,
      type,
      `expected ${type}, got ${JSON.stringify(message)}`,
    );
    return message as Extract<Message, { type: T }>;
  }

  /** Reads the next message and asserts it is an ERROR with `code`. */
  async expectError(code: string): Promise<void> {
    const message = await this.expect("error");
    assert.equal(message.code, code, message.message);
  }

  /**
   * Sends HELLO and DIGESTS (SHA-256 only unless told otherwise, so that
   * tests can check digests with `sha256()`), returns the server's HELLO
   * and checks its DIGESTS picked the first algorithm offered.
   */
  async hello(
    minVersion = PROTOCOL_VERSION,
    maxVersion = PROTOCOL_VERSION,
    digests: string[] = ["sha256"],
  ): Promise<HelloMessage> {
    await this.sendHello(minVersion, maxVersion, digests);
    const hello = await this.expect("hello");
    const chosen = await this.expect("digests");
    assert.deepEqual(chosen.algorithms, digests.slice(0, 1));
    return hello;
  }

  /** Sends HELLO (a fresh nonce), then DIGESTS unless `digests` is null. */
  async sendHello(
    minVersion: number,
    maxVersion: number,
    digests: string[] | null,
  ): Promise<void> {
    await this.send({
      type: "hello",
      minVersion,
      maxVersion,
      flags: 0,
      nonce: crypto.getRandomValues(new Uint8Array(32)),
    });
    if (digests) await this.send({ type: "digests", algorithms: digests });
  }

  /** Reads exactly `count` raw bytes. */
  async readRaw(count: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(count);
    let at = 0;
    while (at < count) {
      const n = await this.reader.read(bytes.subarray(at));
      assert.notEqual(n, null, `stream ended after ${at} of ${count} bytes`);
      at += n!;
    }
    return bytes;
  }

  /** Resolves true once the server closes the stream (bytes are discarded). */
  async closedByPeer(): Promise<boolean> {
    const sink = new Uint8Array(64 * 1024);
    try {
      while ((await this.reader.read(sink)) !== null) {
        // discard
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    }
    return true;
  }

  /** GETs a file and returns its bytes, the DATA frame and what followed. */
  async get(path: string, offset = 0): Promise<{
    size: number;
    mtime: number;
    bytes: Uint8Array;
    trailer: Message | null;
  }> {
    await this.send({ type: "get", path, offset });
    const data = await this.expect("data");
    const bytes = await this.readRaw(data.size - data.offset);
    return {
      size: data.size,
      mtime: data.mtime,
      bytes,
      trailer: await this.next(),
    };
  }

  /** PUTs `bytes` (with a correct hash unless `hash` is given); returns the reply. */
  async put(
    path: string,
    bytes: Uint8Array,
    options: {
      overwrite?: boolean;
      mtime?: number;
      hash?: Uint8Array;
      resume?: boolean;
    } = {},
  ): Promise<Message | null> {
    await this.send({
      type: "put",
      path,
      size: bytes.length,
      overwrite: options.overwrite ?? false,
      resume: options.resume ?? false,
      mtime: options.mtime,
    });
    const ready = await this.next();
    if (ready?.type !== "ready") return ready;
    assert.equal(ready.offset, 0);
    await writeAll(this.conn, bytes);
    await this.send({ type: "hash", digest: options.hash ?? sha256(bytes) });
    return await this.next();
  }

  /**
   * Sends eager PUTs (bytes and HASH at once, no READY), all in one write,
   * then reads one reply per upload.
   */
  async eagerPuts(
    uploads: {
      path: string;
      bytes: Uint8Array;
      overwrite?: boolean;
      mtime?: number;
      hash?: Uint8Array;
    }[],
  ): Promise<(Message | null)[]> {
    const frames: Uint8Array[] = [];
    for (const upload of uploads) {
      frames.push(
        encodeMessage({
          type: "put",
          path: upload.path,
          size: upload.bytes.length,
          overwrite: upload.overwrite ?? false,
          resume: false,
          eager: true,
          mtime: upload.mtime,
        }),
        upload.bytes,
        encodeMessage({
          type: "hash",
          digest: upload.hash ?? sha256(upload.bytes),
        }),
      );
    }
    await writeAll(this.conn, concat(frames));
    const replies: (Message | null)[] = [];
    for (let i = 0; i < uploads.length; i++) replies.push(await this.next());
    return replies;
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** Lists the names of a folder tree on disk (relative, sorted). */
export async function treeNames(
  folder: string,
  prefix = "",
): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(folder)) {
    names.push(prefix + entry.name);
    if (entry.isDirectory) {
      names.push(
        ...await treeNames(
          `${folder}/${entry.name}`,
          `${prefix}${entry.name}/`,
        ),
      );
    }
  }
  return names.sort();
}

/**
 * The server's side of a handshake, for fake servers in tests: reads the
 * client's HELLO and DIGESTS and answers HELLO (this protocol version, no
 * auth) and DIGESTS choosing `digest`.
 */
export async function acceptHandshake(
  reader: FrameReader,
  conn: Deno.Conn,
  digest: string = "xxh3-128",
): Promise<void> {
  const hello = await reader.readMessage();
  assert.equal(hello?.type, "hello");
  const offer = await reader.readMessage();
  assert.equal(offer?.type, "digests");
  await writeAll(
    conn,
    new Uint8Array([
      ...encodeMessage({
        type: "hello",
        minVersion: PROTOCOL_VERSION,
        maxVersion: PROTOCOL_VERSION,
        flags: 0,
        nonce: new Uint8Array(32),
      }),
      ...encodeMessage({ type: "digests", algorithms: [digest] }),
    ]),
  );
}
