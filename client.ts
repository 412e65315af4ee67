#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-env=FERRY_TOKEN
/**
 * The ferry client: a library ({@linkcode connect}, {@linkcode FerryClient},
 * {@linkcode classicGet}) and a command-line tool.
 *
 * Every download is received into `DEST.part`, checked against the SHA-256
 * the server sends and only then renamed to `DEST`; every upload ends with
 * the SHA-256 of the file, which the server checks before it keeps anything.
 *
 * Run it from a shell:
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write client.ts ls
 * deno run --allow-net --allow-read --allow-write client.ts get notes.txt
 * deno run --allow-net --allow-read --allow-write client.ts get notes.txt -o - | less
 * deno run --allow-net --allow-read --allow-write client.ts put report.pdf docs/report.pdf
 * deno run --allow-net --allow-read --allow-write client.ts --classic get notes.txt
 * FERRY_TOKEN=s3cret deno run --allow-net --allow-read --allow-write \
 *   --allow-env=FERRY_TOKEN client.ts --host files.example --tls ls
 * ```
 *
 * A server started with a token asks for it: give it with `--token-file
 * PATH` or `FERRY_TOKEN` (or `--token`, visible in `ps`). `--tls` connects
 * with TLS and verifies the certificate; `--ca FILE` trusts a private CA.
 *
 * Without a command, on a terminal, it asks for a file name like the lab's
 * classic client and downloads it. Exit status: 0 on success, 1 when the
 * operation failed, 2 for a usage error.
 *
 * @example List and download from a server
 * ```ts ignore
 * import { connect } from "./client.ts";
 * await using client = await connect({ hostname: "127.0.0.1", port: 65432 });
 * for (const entry of await client.list()) console.log(entry.name);
 * await client.get("notes.txt", "notes.txt", { overwrite: true });
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { type BulkBuffers, copyHashed, makeBulkBuffers } from "./_copy.ts";
import {
  type ConnectOptions,
  DEFAULT_HOSTNAME,
  DEFAULT_PORT,
  dial,
  formatAddress,
  handled,
  messageOf,
  openReceiver,
  type Receiver,
  sameBytes,
  toHex,
  type TransferOptions,
  type TransferResult,
} from "./_client_common.ts";
import { classicGet } from "./_classic_client.ts";
import { removePartRecord, resumableGet, resumablePut } from "./_resume.ts";
import type { FileOutcome, SessionIo } from "./_session_io.ts";
import {
  runGetMany,
  runGetTree,
  runPutTree,
  type TransferCli,
  writeStderr,
} from "./_cli_transfer.ts";
import { jsonLine } from "./_json_output.ts";
import { ProgressLine } from "./_progress.ts";
import {
  type GetManyItem,
  type GetManyOptions,
  pipelineGet,
} from "./_tree_get.ts";
import {
  pipelinePut,
  type PutManyItem,
  type PutManyOptions,
} from "./_tree_put.ts";
import {
  authFrame,
  dialTls,
  isTlsRecord,
  MISSING_TOKEN_MESSAGE,
  wantsTls,
} from "./_client_security.ts";
import { resolveToken } from "./_token_source.ts";
import { FerryError, type FerryErrorCode, isWireErrorCode } from "./errors.ts";
import {
  type ByteReader,
  type ByteWriter,
  encodeMessage,
  type Entry,
  type ErrorMessage,
  FrameReader,
  HELLO_AUTH_REQUIRED,
  type Message,
  PROTOCOL_VERSION,
  writeAll,
} from "./protocol.ts";

export {
  CLASSIC_MAX_NAME_BYTES,
  CLASSIC_MAX_SIZE_DIGITS,
  CLASSIC_SIZE_QUIET_MS,
  CLASSIC_TIMEOUT_MS,
  classicGet,
  type ClassicGetOptions,
} from "./_classic_client.ts";
export type {
  ConnectOptions,
  TransferOptions,
  TransferResult,
} from "./_client_common.ts";
export type { ByteWriter, Entry } from "./protocol.ts";
export type { FileOutcome } from "./_session_io.ts";
export type { GetManyItem, GetManyOptions } from "./_tree_get.ts";
export type { PutManyItem, PutManyOptions } from "./_tree_put.ts";
export { FerryError, type FerryErrorCode } from "./errors.ts";

/**
 * How long {@linkcode connect} waits for the server's `HELLO`, in
 * milliseconds.
 *
 * @example Read the bound
 * ```ts
 * import { HANDSHAKE_TIMEOUT_MS } from "./client.ts";
 * console.assert(HANDSHAKE_TIMEOUT_MS === 10_000);
 * ```
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

const NONCE_BYTES = 32;

/** The error for a received `ERROR` frame; unknown codes become `INTERNAL`. */
function serverError(message: ErrorMessage): FerryError {
  if (isWireErrorCode(message.code)) {
    return new FerryError(message.code, message.message || message.code);
  }
  return new FerryError(
    "INTERNAL",
    message.message ? `${message.code}: ${message.message}` : message.code,
  );
}

/** Maps an error of the connection or of the frame decoder. */
function transportError(error: unknown, closed: boolean): Error {
  if (error instanceof FerryError) {
    if (error.code === "BAD_REQUEST" || error.code === "TOO_LARGE") {
      return new FerryError(
        "PROTOCOL",
        `Bad frame from the server: ${error.message}`,
        { cause: error },
      );
    }
    return error;
  }
  if (closed) {
    return new FerryError("CONNECTION", "Connection closed", { cause: error });
  }
  return new FerryError(
    "CONNECTION",
    `Connection failed: ${messageOf(error)}`,
    {
      cause: error,
    },
  );
}

/**
 * A session with a ferry server, made by {@linkcode connect}.
 *
 * Requests run one after another: calls made while another is in flight wait
 * for it. A refusal by the server (an `ERROR` frame, such as `NOT_FOUND`)
 * leaves the session usable; a broken connection or an unexpected frame
 * closes it, and later calls fail with `CONNECTION`.
 *
 * @example Download a file
 * ```ts ignore
 * import { connect } from "./client.ts";
 * await using client = await connect({ port: 65432 });
 * const result = await client.get("notes.txt", "notes.txt");
 * console.log(`${result.bytes} bytes, sha256 ${result.sha256}`);
 * ```
 */
export class FerryClient {
  /** The negotiated protocol version. */
  readonly version: number;
  #conn: Deno.Conn;
  #reader: FrameReader;
  #signal: AbortSignal | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #buffers: BulkBuffers | undefined;
  /** Errors after which the frames are still in step with the server. */
  #recoverable = new WeakSet<object>();
  #source: ByteReader;
  #sink: ByteWriter;
  #onAbort: () => void;

  /**
   * Wraps a connection whose handshake is done; most code calls
   * {@linkcode connect} instead.
   *
   * @param conn The connection.
   * @param version The negotiated protocol version.
   * @param options `reader`: the frame reader used for the handshake (it may
   * hold buffered bytes); `signal`: aborting it closes the client.
   */
  constructor(
    conn: Deno.Conn,
    version: number,
    options: { reader?: FrameReader; signal?: AbortSignal } = {},
  ) {
    this.#conn = conn;
    this.version = version;
    this.#reader = options.reader ?? new FrameReader(conn);
    this.#signal = options.signal;
    const reader = this.#reader;
    const isClosed = (): boolean => this.#closed;
    this.#source = {
      async read(p: Uint8Array): Promise<number | null> {
        try {
          return await reader.read(p);
        } catch (error) {
          throw transportError(error, isClosed());
        }
      },
    };
    async function write(p: Uint8Array): Promise<number> {
      try {
        return await conn.write(p);
      } catch (error) {
        throw transportError(error, isClosed());
      }
    }
    this.#sink = {
      write(p: Uint8Array): Promise<number> {
        return handled(write(p));
      },
    };
    this.#onAbort = () => this.close();
    if (this.#signal?.aborted) this.close();
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Lists a folder.
   *
   * @param path Folder on the server; `""` is the root.
   * @param options `recursive`: list the whole subtree, with `/`-separated
   * names, folders before their contents (default `false`).
   * @returns The entries, in the server's order.
   * @throws {FerryError} `NOT_FOUND`, `FORBIDDEN` and other refusals of the
   * server; `CONNECTION` or `PROTOCOL` if the session breaks.
   *
   * @example List the root
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * console.log((await client.list()).map((entry) => entry.name));
   * ```
   */
  list(path = "", options: { recursive?: boolean } = {}): Promise<Entry[]> {
    return this.#run(async () => {
      await this.#send({
        type: "list",
        path,
        recursive: options.recursive ?? false,
      });
      const entries: Entry[] = [];
      while (true) {
        const message = await this.#expect("entries", "end");
        if (message.type === "end") {
          if (message.count !== entries.length) {
            throw new FerryError(
              "PROTOCOL",
              `END counts ${message.count} entries, ${entries.length} were sent`,
            );
          }
          return entries;
        }
        for (const entry of message.entries) entries.push(entry);
      }
    });
  }

  /**
   * Describes one file or folder.
   *
   * @param path Path on the server; `""` is the root.
   * @returns The entry (its name is the last segment of `path`).
   * @throws {FerryError} `NOT_FOUND`, `FORBIDDEN` and other refusals of the
   * server; `CONNECTION` or `PROTOCOL` if the session breaks.
   *
   * @example Size of a file
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * console.log((await client.stat("notes.txt")).size);
   * ```
   */
  stat(path: string): Promise<Entry> {
    return this.#run(async () => {
      await this.#send({ type: "stat", path });
      return (await this.#expect("info")).entry;
    });
  }

  /**
   * Downloads a file.
   *
   * With a path as destination the bytes go to `DEST.part`, which is renamed
   * to `DEST` (with the remote modification time) once its SHA-256 matches
   * the server's; on a mismatch or a refusal it is removed. A connection
   * that breaks mid-transfer leaves `DEST.part` behind.
   *
   * With a `ByteWriter` or a `WritableStream` the bytes are delivered as they
   * arrive: the SHA-256 is still checked and a mismatch still throws
   * `INTEGRITY`, but the bytes have already been written by then. A stream
   * receives a copy of each chunk and is released, not closed, at the end.
   *
   * @param path File on the server.
   * @param destination Local file path, a writer such as `Deno.stdout`, or a
   * stream.
   * @param options `overwrite` an existing local file, `onProgress`.
   * @returns What was transferred.
   * @throws {FerryError} `EXISTS` if the local file exists and `overwrite`
   * is not set (before anything is requested), `NOT_FOUND`, `FORBIDDEN` and
   * other refusals, `CHANGED` if the file changed while it was sent,
   * `INTEGRITY` if the SHA-256 differs, `CONNECTION` if the connection ends
   * early, `LOCAL` if the destination cannot be written.
   *
   * @example Download to a file and to standard output
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * await client.get("notes.txt", "notes.txt", { overwrite: true });
   * await client.get("notes.txt", Deno.stdout);
   * ```
   */
  get(
    path: string,
    destination: string | ByteWriter | WritableStream<Uint8Array>,
    options: TransferOptions = {},
  ): Promise<TransferResult> {
    return this.#run(async () => {
      if (typeof destination === "string" && (options.resume ?? true)) {
        const addr = this.#conn.remoteAddr as Deno.NetAddr;
        return await resumableGet(
          this.#io(),
          formatAddress(addr.hostname, addr.port),
          path,
          destination,
          options,
        );
      }
      const start = performance.now();
      let receiver: Receiver;
      try {
        receiver = await openReceiver(destination, options.overwrite ?? false);
      } catch (error) {
        throw this.#keep(error);
      }
      let committed = false;
      let keepPart = false;
      try {
        await this.#send({ type: "get", path, offset: 0 });
        const data = await this.#expect("data");
        if (data.offset !== 0) {
          throw new FerryError(
            "PROTOCOL",
            `DATA starts at offset ${data.offset}, 0 was asked for`,
          );
        }
        const size = data.size;
        const hash = createHash("sha256");
        const onProgress = options.onProgress;
        const moved = await copyHashed(
          this.#source,
          receiver.writer,
          size,
          hash,
          this.#bulkBuffers(),
          onProgress && ((done) => onProgress(done, size)),
        );
        if (moved < size) {
          keepPart = true;
          throw new FerryError(
            "CONNECTION",
            `Connection closed after ${moved} of ${size} bytes`,
          );
        }
        const reply = await this.#expect("hash");
        const digest = hash.digest();
        if (!sameBytes(reply.sha256, digest)) {
          throw this.#keep(
            new FerryError(
              "INTEGRITY",
              `Integrity check failed: the server's SHA-256 is ${
                toHex(reply.sha256)
              }, the received bytes' is ${toHex(digest)}`,
            ),
          );
        }
        try {
          await receiver.commit(data.mtime);
        } catch (error) {
          throw this.#keep(error);
        }
        committed = true;
        // A record of an earlier, resumable download of DEST is stale now.
        if (typeof destination === "string") {
          await removePartRecord(destination);
        }
        return {
          path,
          bytes: size,
          sha256: toHex(digest),
          seconds: (performance.now() - start) / 1000,
        };
      } finally {
        if (!committed) await receiver.discard(keepPart);
      }
    });
  }

  /**
   * Uploads a file. The server keeps it only if the SHA-256 sent after the
   * bytes matches what it received.
   *
   * @param localPath Local file to send.
   * @param remotePath Path on the server.
   * @param options `overwrite` an existing remote file, `onProgress`.
   * @returns What was transferred.
   * @throws {FerryError} `LOCAL` if the local file does not exist or is
   * not a readable file, `NOT_FOUND` if the remote folder does not exist,
   * `EXISTS` if the remote file exists
   * and `overwrite` is not set, `FORBIDDEN` if uploads are off or the path is
   * not allowed, `INTEGRITY` if the server received other bytes, `CHANGED`
   * if the local file changed while it was sent (the session closes),
   * `CONNECTION` if the connection breaks.
   *
   * @example Upload a file
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * await client.put("report.pdf", "docs/report.pdf", { overwrite: true });
   * ```
   */
  put(
    localPath: string,
    remotePath: string,
    options: TransferOptions = {},
  ): Promise<TransferResult> {
    return this.#run(() =>
      resumablePut(this.#io(), localPath, remotePath, options)
    );
  }

  /**
   * Creates a folder on the server, with any missing parents (uploads must
   * be allowed), or sets the time of one that exists.
   *
   * @param path Folder on the server.
   * @param options `mtime`: modification time to give it, milliseconds.
   * @returns A promise that settles once the server answered `OK`.
   * @throws {FerryError} `FORBIDDEN` if uploads are off or the path is not
   * allowed, `EXISTS` if a file has the name of a segment, `CONNECTION` or
   * `PROTOCOL` if the session breaks.
   *
   * @example Create a folder
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * await client.mkdir("inbox/2024");
   * ```
   */
  mkdir(path: string, options: { mtime?: number } = {}): Promise<void> {
    return this.#run(async () => {
      await this.#send({ type: "mkdir", path, mtime: options.mtime });
      await this.#expect("ok");
    });
  }

  /**
   * Downloads many files over this one connection, sending up to `window`
   * `GET`s ahead of the replies. Each file is received as by
   * {@linkcode FerryClient.get} (`DEST.part`, SHA-256 check, rename). A
   * refusal of one file does not stop the others; a broken session fails
   * the rest with `CONNECTION`. No other call runs in between.
   *
   * @param items Remote paths and local file paths.
   * @param options `window` (default 32), `overwrite`, callbacks.
   * @returns One outcome per item, in order: `result` or `error`.
   *
   * @example Download three files
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * const outcomes = await client.getMany(
   *   ["a", "b", "c"].map((name) => ({ path: name, destination: name })),
   * );
   * console.log(outcomes.filter((outcome) => outcome.error).length);
   * ```
   */
  getMany(
    items: readonly GetManyItem[],
    options: GetManyOptions = {},
  ): Promise<FileOutcome[]> {
    return this.#run(() => pipelineGet(this.#io(), items, options));
  }

  /**
   * Creates folders and uploads files over this one connection, in order:
   * `MKDIR`s are pipelined, and each `PUT` leaves before the previous
   * file's `OK` has arrived. A refusal of one item does not stop the others.
   *
   * @param items Folders to make (with an optional time) and files to send.
   * @param options `window` (default 32), `overwrite`, callbacks.
   * @returns One outcome per item, in order: `result` or `error`.
   *
   * @example Upload a folder of two files
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * await client.putMany([
   *   { kind: "dir", remote: "docs" },
   *   { kind: "file", local: "a.txt", remote: "docs/a.txt" },
   *   { kind: "file", local: "b.txt", remote: "docs/b.txt" },
   * ]);
   * ```
   */
  putMany(
    items: readonly PutManyItem[],
    options: PutManyOptions = {},
  ): Promise<FileOutcome[]> {
    return this.#run(() => pipelinePut(this.#io(), items, options));
  }

  /** The session as the pipelines see it. */
  #io(): SessionIo {
    return {
      send: async (messages) => {
        const frames = messages.map((message) => encodeMessage(message));
        const bytes = frames.length === 1
          ? frames[0]
          : new Uint8Array(frames.reduce((n, frame) => n + frame.length, 0));
        if (frames.length > 1) {
          let at = 0;
          for (const frame of frames) {
            bytes.set(frame, at);
            at += frame.length;
          }
        }
        await writeAll(this.#sink, bytes);
      },
      expect: (...types) => this.#expect(...types),
      source: this.#source,
      sink: this.#sink,
      buffers: () => this.#bulkBuffers(),
      recoverable: (error) =>
        typeof error === "object" && error !== null &&
        this.#recoverable.has(error),
      keep: (error) => this.#keep(error),
      close: () => this.close(),
    };
  }

  /**
   * Closes the connection. Pending and later calls reject with `CONNECTION`.
   *
   * @example Close explicitly
   * ```ts ignore
   * import { connect } from "./client.ts";
   * const client = await connect();
   * client.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * Closes the connection and waits for pending calls to settle, for
   * `await using`.
   *
   * @returns A promise that settles once nothing is pending.
   *
   * @example Close at the end of a scope
   * ```ts ignore
   * import { connect } from "./client.ts";
   * await using client = await connect();
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#queue;
  }

  /** Runs one request after the previous ones. */
  #run<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(async () => {
      this.#signal?.throwIfAborted();
      if (this.#closed) throw new FerryError("CONNECTION", "Client is closed");
      try {
        return await operation();
      } catch (error) {
        if (this.#signal?.aborted) {
          this.close();
          throw this.#signal.reason;
        }
        if (!this.#recoverable.has(error as object)) this.close();
        throw error;
      }
    });
    this.#queue = result.then(() => {}, () => {});
    return result;
  }

  /** Marks an error that leaves the session in step with the server. */
  #keep(error: unknown): unknown {
    if (typeof error === "object" && error !== null) {
      this.#recoverable.add(error);
    }
    return error;
  }

  #bulkBuffers(): BulkBuffers {
    return this.#buffers ??= makeBulkBuffers();
  }

  async #send(message: Message): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(message);
    } catch (error) {
      throw this.#keep(error);
    }
    await writeAll(this.#sink, bytes);
  }

  /** Reads the next frame; `ERROR` throws, other unexpected types close. */
  async #expect<T extends Message["type"]>(
    ...types: T[]
  ): Promise<Extract<Message, { type: T }>> {
    let message: Message | null;
    try {
      message = await this.#reader.readMessage();
    } catch (error) {
      throw transportError(error, this.#closed);
    }
    if (message === null) {
      throw new FerryError("CONNECTION", "Connection closed by the server");
    }
    if (message.type === "error") throw this.#keep(serverError(message));
    if (!(types as string[]).includes(message.type)) {
      throw new FerryError(
        "PROTOCOL",
        `Unexpected ${message.type.toUpperCase()} from the server (expected ${
          types.map((type) => type.toUpperCase()).join(" or ")
        })`,
      );
    }
    return message as Extract<Message, { type: T }>;
  }
}

/**
 * Connects to a ferry server and performs the handshake.
 *
 * @param options Where to connect, the token and TLS settings, and a signal
 * that closes the session.
 * @returns A client ready for requests; close it (or use `await using`).
 * @throws {FerryError} `CONNECTION` if the server cannot be reached or
 * closes the connection (`Connection refused: 127.0.0.1:65432`), or, with
 * TLS, presents a certificate that is not trusted or does not speak TLS;
 * `UNSUPPORTED_VERSION` if no protocol version is shared, `UNAUTHORIZED` if
 * the server requires a token and `token` is missing or wrong, `TIMEOUT` if it does not answer within
 * {@linkcode HANDSHAKE_TIMEOUT_MS}, `PROTOCOL` for a reply that is not a
 * ferry `HELLO`, `BUSY` and other refusals of the server.
 *
 * @example Connect and list
 * ```ts ignore
 * import { connect } from "./client.ts";
 * await using client = await connect({ hostname: "127.0.0.1", port: 65432 });
 * console.log(client.version, await client.list());
 * ```
 */
export async function connect(
  options: ConnectOptions = {},
): Promise<FerryClient> {
  const address = formatAddress(
    options.hostname ?? DEFAULT_HOSTNAME,
    options.port ?? DEFAULT_PORT,
  );
  const conn = wantsTls(options)
    ? await dialTls(options, HANDSHAKE_TIMEOUT_MS)
    : await dial(options);
  const reader = new FrameReader(conn);
  const signal = options.signal;
  let timedOut = false;
  function closeConn(): void {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  const timer = setTimeout(() => {
    timedOut = true;
    closeConn();
  }, HANDSHAKE_TIMEOUT_MS);
  signal?.addEventListener("abort", closeConn, { once: true });
  try {
    const clientHello = encodeMessage({
      type: "hello",
      minVersion: 1,
      maxVersion: PROTOCOL_VERSION,
      flags: 0,
      nonce: crypto.getRandomValues(new Uint8Array(NONCE_BYTES)),
    });
    await writeAll(conn, clientHello);
    const first = await reader.peek();
    if (first !== null && !wantsTls(options) && isTlsRecord(first[0])) {
      throw new FerryError(
        "CONNECTION",
        `${address} answered with TLS: connect with TLS (--tls or --ca FILE)`,
      );
    }
    const reply = await reader.readMessage();
    if (reply === null) {
      throw new FerryError(
        "CONNECTION",
        `Connection closed during the handshake: is ${address} a ferry server?`,
      );
    }
    if (reply.type === "error") throw serverError(reply);
    if (reply.type !== "hello") {
      throw new FerryError(
        "PROTOCOL",
        `Expected HELLO from the server, got ${reply.type.toUpperCase()}`,
      );
    }
    const version = reply.maxVersion;
    if (version < 1 || version > PROTOCOL_VERSION) {
      throw new FerryError(
        "UNSUPPORTED_VERSION",
        `The server chose protocol version ${version}; this client speaks 1 to ${PROTOCOL_VERSION}`,
      );
    }
    if (reply.flags & HELLO_AUTH_REQUIRED) {
      if (options.token === undefined || options.token === "") {
        throw new FerryError("UNAUTHORIZED", MISSING_TOKEN_MESSAGE);
      }
      await writeAll(
        conn,
        authFrame(options.token, clientHello, reply, version),
      );
      const verdict = await reader.readMessage();
      if (verdict === null) {
        throw new FerryError(
          "CONNECTION",
          "Connection closed during authentication",
        );
      }
      if (verdict.type === "error") throw serverError(verdict);
      if (verdict.type !== "ok") {
        throw new FerryError(
          "PROTOCOL",
          `Expected OK after AUTH, got ${verdict.type.toUpperCase()}`,
        );
      }
    }
    return new FerryClient(conn, version, { reader, signal });
  } catch (error) {
    closeConn();
    if (signal?.aborted) throw signal.reason;
    if (timedOut) {
      throw new FerryError(
        "TIMEOUT",
        `No handshake reply from ${address} within ${HANDSHAKE_TIMEOUT_MS} ms`,
      );
    }
    if (error instanceof FerryError) {
      if (error.code === "TRUNCATED") {
        throw new FerryError(
          "PROTOCOL",
          `Incomplete handshake reply: is ${address} a ferry server?`,
          { cause: error },
        );
      }
      throw transportError(error, false);
    }
    throw new FerryError(
      "CONNECTION",
      `Connection failed during the handshake: ${messageOf(error)}`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", closeConn);
  }
}

// ---------------------------------------------------------------------------
// Command-line tool

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** One line of an OPTIONS block. */
function option(flags: string, text: string): string {
  return `  ${flags.padEnd(20)}${text}`;
}

const GLOBAL_OPTION_LINES = [
  option(
    "--host HOST",
    `Server host name or address (default: ${DEFAULT_HOSTNAME})`,
  ),
  option("--port PORT", `Server port (default: ${DEFAULT_PORT})`),
  option(
    "--classic",
    "Speak the lab's classic protocol; get only (default: off)",
  ),
  option(
    "--token SECRET",
    "Token for a server that requires one; visible in ps, prefer FERRY_TOKEN or --token-file (default: none)",
  ),
  option(
    "--token-file PATH",
    "Read the token from the first line of PATH (default: none); precedence: --token, --token-file, FERRY_TOKEN",
  ),
  option(
    "--tls",
    "Connect with TLS, verifying the certificate (default: off)",
  ),
  option(
    "--ca FILE",
    "Trust the CA certificates in FILE (PEM) instead of the system's; implies --tls (default: system roots)",
  ),
  option("-h, --help", "Show help (default: off)"),
].join("\n");

const RESUME_OPTION_LINE = option(
  "--no-resume",
  "Start over instead of continuing a cut transfer (default: resume)",
);

const TOOL_USAGE =
  `ferry client: list, download and upload files on a ferry server.

USAGE:
  client.ts [OPTIONS] <COMMAND> [ARGS]
  client.ts [OPTIONS]            Ask for a file name and download it (terminal only)

COMMANDS:
  get NAME [-o PATH|-] [--force]     Download a file
  get NAME... [-o DIR]               Download several files on one connection
  get -r DIR [-o DEST]               Download a folder tree
  ls [DIR] [--json] [--recursive]    List a folder
  put LOCAL [REMOTE] [--force]       Upload a file
  put -r LOCAL [REMOTE]              Upload a folder tree
  help [COMMAND]                     Show help for a command

OPTIONS:
${GLOBAL_OPTION_LINES}

Exit status: 0 ok, 1 failed operation, 2 usage error.`;

const COMMAND_USAGE: Record<Command, string> = {
  get: `ferry client get: download a file, several files or a folder.

USAGE:
  client.ts [OPTIONS] get NAME [-o PATH|-] [--force]
  client.ts [OPTIONS] get NAME... [-o DIR] [--force]
  client.ts [OPTIONS] get -r DIR [-o DEST] [--force]

The file is received into PATH.part, checked against the server's SHA-256 and
only then renamed to PATH. With --classic it is fetched from a classic (lab)
server, which sends no checksum. Several names, or -r, use one pipelined
connection; a failed file does not stop the others, a summary of failures
goes to stderr and the exit status is 1.

OPTIONS:
${
    option(
      "-o, --output PATH",
      "Where to save it; - for stdout, a folder to save in it (default: NAME's last segment, in the current folder)",
    )
  }
${option("-f, --force", "Overwrite an existing file (default: off)")}
${option("-r, --recursive", "Copy the folder DIR into DEST (default: off)")}
${
    option(
      "--json",
      "Print one JSON object per file on stdout (default: off)",
    )
  }
${option("-q, --quiet", "No progress line on the terminal (default: off)")}
${RESUME_OPTION_LINE}
${GLOBAL_OPTION_LINES}`,
  ls: `ferry client ls: list a folder.

USAGE:
  client.ts [OPTIONS] ls [DIR] [--json] [--recursive]

Prints one line per entry: kind, size, modification time (local), name.

OPTIONS:
${option("--json", "Print one JSON array of entries instead (default: off)")}
${option("-r, --recursive", "List the whole subtree (default: off)")}
${GLOBAL_OPTION_LINES}`,
  put: `ferry client put: upload a file or a folder.

USAGE:
  client.ts [OPTIONS] put LOCAL [REMOTE] [--force]
  client.ts [OPTIONS] put -r LOCAL [REMOTE] [--force]

REMOTE defaults to LOCAL's last segment. The server keeps the file only if
its SHA-256 matches. Uploads must be allowed by the server. With -r,
symbolic links inside LOCAL are not followed: they are skipped and listed.

OPTIONS:
${option("-f, --force", "Overwrite an existing remote file (default: off)")}
${option("-r, --recursive", "Upload the folder LOCAL (default: off)")}
${
    option(
      "--json",
      "Print one JSON object per file on stdout (default: off)",
    )
  }
${option("-q, --quiet", "No progress line on the terminal (default: off)")}
${RESUME_OPTION_LINE}
${GLOBAL_OPTION_LINES}`,
  help: `ferry client help: show help.

USAGE:
  client.ts help [COMMAND]

OPTIONS:
${GLOBAL_OPTION_LINES}`,
};

type Command = "get" | "ls" | "put" | "help";

const COMMANDS: readonly Command[] = ["get", "ls", "put", "help"];

/** Flags that belong to one command, by parseArgs name. */
const COMMAND_FLAGS: Record<string, { command: Command; flag: string }> = {
  output: { command: "get", flag: "--output" },
  force: { command: "get", flag: "--force" },
  json: { command: "ls", flag: "--json" },
  recursive: { command: "ls", flag: "--recursive" },
  quiet: { command: "get", flag: "--quiet" },
  "no-resume": { command: "get", flag: "--no-resume" },
};

/** Phrases for people, by error code. */
const PHRASES: Record<FerryErrorCode, string> = {
  NOT_FOUND: "not found",
  FORBIDDEN: "forbidden",
  EXISTS: "already exists (use --force to overwrite)",
  BAD_REQUEST: "bad request",
  TOO_LARGE: "too large",
  UNSUPPORTED_VERSION: "unsupported protocol version",
  INTERNAL: "server error",
  UNAUTHORIZED: "unauthorized",
  BUSY: "server busy, try again later",
  CHANGED: "file changed while it was sent, try again",
  INTEGRITY: "integrity check failed",
  CONNECTION: "connection failed",
  TRUNCATED: "connection failed",
  PROTOCOL: "protocol error",
  TIMEOUT: "timed out",
  LOCAL: "local file error",
};

class UsageError extends Error {
  command: Command | undefined;
  constructor(message: string, command?: Command) {
    super(message);
    this.command = command;
  }
}

interface CliOptions {
  hostname: string;
  port: number;
  classic: boolean;
  tokenFlag: string | undefined;
  tokenFile: string | undefined;
  tls: boolean;
  ca: string | undefined;
  /** Set by {@linkcode loadSecurity}: the token and the CA certificates. */
  token?: string;
  caCerts?: string[];
  command: Command | undefined;
  args: string[];
  output: string | undefined;
  force: boolean;
  json: boolean;
  recursive: boolean;
  quiet: boolean;
  /** Continue cut transfers (`--no-resume` turns it off). */
  resume: boolean;
  help: boolean;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function parseCli(args: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        classic: { type: "boolean" },
        token: { type: "string" },
        "token-file": { type: "string" },
        tls: { type: "boolean" },
        ca: { type: "string" },
        help: { type: "boolean", short: "h" },
        output: { type: "string", short: "o" },
        force: { type: "boolean", short: "f" },
        json: { type: "boolean" },
        recursive: { type: "boolean", short: "r" },
        quiet: { type: "boolean", short: "q" },
        "no-resume": { type: "boolean" },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    const first = messageOf(error).split(". ")[0];
    const command = COMMANDS.find((name) => args.includes(name));
    throw new UsageError(lowerFirst(first), command);
  }
  const { values, positionals } = parsed;
  const [name, ...rest] = positionals;
  let command: Command | undefined;
  if (name !== undefined) {
    if (!(COMMANDS as string[]).includes(name)) {
      throw new UsageError(`unknown command '${name}'`);
    }
    command = name as Command;
  }
  const port = values.port ?? String(DEFAULT_PORT);
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new UsageError(
      `invalid port '${values.port}': expected 1 to 65535`,
      command,
    );
  }
  const options: CliOptions = {
    hostname: values.host ?? DEFAULT_HOSTNAME,
    port: Number(port),
    classic: values.classic ?? false,
    tokenFlag: values.token,
    tokenFile: values["token-file"],
    tls: values.tls ?? false,
    ca: values.ca,
    command,
    args: rest,
    output: values.output,
    force: values.force ?? false,
    json: values.json ?? false,
    recursive: values.recursive ?? false,
    quiet: values.quiet ?? false,
    resume: !(values["no-resume"] ?? false),
    help: values.help ?? false,
  };
  if (options.help) return options;
  for (const [key, { command: owner, flag }] of Object.entries(COMMAND_FLAGS)) {
    const given = (values as Record<string, unknown>)[key] !== undefined;
    // Without a command the tool asks for a name and gets it.
    const effective = command ?? "get";
    const allowed = owner === effective ||
      (key === "force" && effective === "put") ||
      (["json", "recursive", "quiet", "no-resume"].includes(key) &&
        (effective === "get" || effective === "put"));
    if (given && !allowed) {
      throw new UsageError(
        `option ${flag} does not apply to ${command ?? "the prompt"}`,
        command,
      );
    }
  }
  if (options.classic && command !== undefined && command !== "get") {
    throw new UsageError(`--classic works with get only`, command);
  }
  if (
    options.classic &&
    (options.tokenFlag !== undefined || options.tokenFile !== undefined ||
      options.tls || options.ca !== undefined)
  ) {
    throw new UsageError(
      "--classic cannot be combined with --token, --token-file, --tls or --ca",
      command,
    );
  }
  const counts: Record<Command, [number, number]> = {
    get: [1, Infinity],
    ls: [0, 1],
    put: [1, 2],
    help: [0, 1],
  };
  if (command !== undefined) {
    const [min, max] = counts[command];
    if (rest.length < min) {
      throw new UsageError(`${command}: missing argument`, command);
    }
    if (rest.length > max) {
      throw new UsageError(`${command}: too many arguments`, command);
    }
  }
  return options;
}

/** The last segment of a remote path or classic name, or "" if none. */
function baseName(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? "";
  return base === "." || base === ".." ? "" : base;
}

function pad2(value: number): string {
  return String(value).padStart(2, "0");
}

function formatTime(ms: number): string {
  const date = new Date(ms);
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${
    pad2(date.getDate())
  } ${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
}

function formatEntries(entries: readonly Entry[]): string {
  const sizeWidth = Math.max(
    0,
    ...entries.map((entry) => String(entry.size).length),
  );
  return entries.map((entry) =>
    `${entry.kind.padEnd(4)}  ${String(entry.size).padStart(sizeWidth)}  ${
      formatTime(entry.mtime)
    }  ${entry.name}`
  ).join("\n");
}

/** One line for people about a failed operation. */
function describeFailure(
  error: FerryError,
  command: Command,
  paths: { local?: string; remote?: string },
): string {
  const detail = lowerFirst(error.message);
  switch (error.code) {
    case "NOT_FOUND":
      // On put, the server found no folder to upload into.
      return command === "put"
        ? `not found on the server: ${paths.remote}`
        : PHRASES.NOT_FOUND;
    case "EXISTS":
      if (command === "put") {
        return `${paths.remote} already exists on the server (use --force to overwrite)`;
      }
      return paths.local !== undefined
        ? `${paths.local} already exists (use --force to overwrite)`
        : PHRASES.EXISTS;
    case "CONNECTION":
    case "TRUNCATED":
    case "LOCAL":
      return detail;
    case "INTEGRITY":
      return PHRASES.INTEGRITY;
    default:
      return `${PHRASES[error.code]}: ${detail}`;
  }
}

/** Resolves the token (flag, file, FERRY_TOKEN) and reads `--ca`. */
async function loadSecurity(options: CliOptions): Promise<void> {
  options.token = (await resolveToken(options.tokenFlag, options.tokenFile))
    .token;
  if (options.ca !== undefined) {
    try {
      options.caCerts = [await Deno.readTextFile(options.ca)];
    } catch (error) {
      const reason = error instanceof Deno.errors.NotFound
        ? "not found"
        : messageOf(error);
      const message = `Cannot read --ca ${options.ca}: ${reason}`;
      throw new FerryError("LOCAL", message, { cause: error });
    }
  }
}

/** The library's connect options for the command line's settings. */
function connectOptionsOf(options: CliOptions): ConnectOptions {
  return {
    hostname: options.hostname,
    port: options.port,
    token: options.token,
    tls: options.tls || options.caCerts !== undefined,
    caCerts: options.caCerts,
  };
}

/** Where `get NAME` saves: `-o PATH`, `-o -` (stdout) or NAME's last segment. */
async function getDestination(
  options: CliOptions,
  name: string,
): Promise<string | ByteWriter> {
  if (options.output === "-") return Deno.stdout;
  const path = options.output;
  if (path !== undefined) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (!info?.isDirectory) return path;
  }
  const base = baseName(name);
  if (base === "") {
    throw new UsageError(
      `cannot name a file after '${name}'; use -o PATH`,
      "get",
    );
  }
  return path === undefined ? base : `${path.replace(/[\\/]+$/, "")}/${base}`;
}

/**
 * The resume settings of one transfer: `--no-resume`, a `resuming at N%`
 * line on a terminal, and a line whenever kept bytes are dropped.
 */
function resumeOptions(
  options: CliOptions,
  subject: string,
): Pick<TransferOptions, "resume" | "onResume" | "onRestart"> {
  return {
    resume: options.resume,
    onResume(offset, total) {
      if (options.quiet || !Deno.stderr.isTerminal()) return;
      const percent = Math.floor(offset / Math.max(total, 1) * 100);
      console.error(`ferry: ${subject}: resuming at ${percent}%`);
    },
    onRestart(reason) {
      console.error(`ferry: ${subject}: ${reason}, starting over`);
    },
  };
}

async function runGet(
  options: CliOptions,
  name: string,
  destination: string | ByteWriter,
  onProgress?: (done: number, total: number) => void,
): Promise<TransferResult> {
  if (options.classic) {
    return await classicGet(name, destination, {
      hostname: options.hostname,
      port: options.port,
      overwrite: options.force,
    });
  }
  await using client = await connect(connectOptionsOf(options));
  return await client.get(name, destination, {
    ...resumeOptions(options, `get ${name}`),
    overwrite: options.force,
    onProgress,
  });
}

/**
 * Runs the command-line tool.
 *
 * @param args Command-line arguments, without the program name.
 * @returns The exit status: 0 ok, 1 failed operation, 2 usage error.
 */
async function main(args: string[]): Promise<number> {
  const out = (text: string) => console.log(text);
  const err = (text: string) => console.error(text);
  let options: CliOptions;
  try {
    options = parseCli(args);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`ferry: ${error.message}`);
      err("");
      err(error.command ? COMMAND_USAGE[error.command] : TOOL_USAGE);
      return EXIT_USAGE;
    }
    err(`ferry: ${messageOf(error)}`);
    return EXIT_FAILED;
  }
  let command = options.command;
  if (options.help || command === "help") {
    const topic = command === "help" ? options.args[0] : command;
    if (topic === undefined) {
      out(TOOL_USAGE);
      return EXIT_OK;
    }
    if (!(COMMANDS as string[]).includes(topic)) {
      err(`ferry: unknown command '${topic}'`);
      err("");
      err(TOOL_USAGE);
      return EXIT_USAGE;
    }
    out(COMMAND_USAGE[topic as Command]);
    return EXIT_OK;
  }
  let subjectArgs = options.args;
  if (command === undefined) {
    if (!Deno.stdin.isTerminal()) {
      err("ferry: missing command");
      err("");
      err(TOOL_USAGE);
      return EXIT_USAGE;
    }
    const answer = prompt("Enter the filename you want to download:");
    if (answer === null || answer.trim() === "") {
      err("ferry: no file name given");
      return EXIT_USAGE;
    }
    command = "get";
    subjectArgs = [answer.trim()];
  }
  if (!options.classic) {
    try {
      await loadSecurity(options);
    } catch (error) {
      if (!(error instanceof FerryError)) throw error;
      err(`ferry: ${lowerFirst(error.message)}`);
      return EXIT_USAGE;
    }
  }
  const subject = [command, ...subjectArgs.slice(0, 1)].join(" ");
  const paths: { local?: string; remote?: string } = {};
  const progress = new ProgressLine({
    write: writeStderr,
    quiet: options.quiet,
  });
  const transferCli: TransferCli = {
    connect: () => connect(connectOptionsOf(options)),
    force: options.force,
    json: options.json,
    output: options.output,
    progress,
    out,
    err,
    usage: (message) => {
      throw new UsageError(message, command);
    },
    describe: (error, name, where) => describeFailure(error, name, where),
  };
  const onProgress = (name: string) => (done: number, total: number) =>
    progress.update(name, done, total);
  try {
    if (
      (options.recursive && command === "put") ||
      (command === "get" && (options.recursive || subjectArgs.length > 1))
    ) {
      if (options.classic) {
        throw new UsageError("--classic gets one file at a time", command);
      }
      if (
        options.recursive && subjectArgs.length > (command === "put" ? 2 : 1)
      ) {
        throw new UsageError(`${command} -r: too many arguments`, command);
      }
      if (command === "put") {
        return await runPutTree(transferCli, subjectArgs[0], subjectArgs[1]);
      }
      return options.recursive
        ? await runGetTree(transferCli, subjectArgs[0])
        : await runGetMany(transferCli, subjectArgs);
    }
    switch (command) {
      case "get": {
        const target = await getDestination(options, subjectArgs[0]);
        if (typeof target === "string") paths.local = target;
        const result = await runGet(
          options,
          subjectArgs[0],
          target,
          onProgress(subjectArgs[0]),
        ).finally(() => progress.finish());
        if (options.json) {
          out(jsonLine(subjectArgs[0], { result }));
        } else if (paths.local !== undefined) {
          out(
            `${paths.local}: ${result.bytes} bytes in ${
              result.seconds.toFixed(2)
            } s, sha256 ${result.sha256}`,
          );
        }
        break;
      }
      case "ls": {
        await using client = await connect(connectOptionsOf(options));
        const entries = await client.list(options.args[0] ?? "", {
          recursive: options.recursive,
        });
        if (options.json) out(JSON.stringify(entries, null, 2));
        else if (entries.length > 0) out(formatEntries(entries));
        break;
      }
      case "put": {
        const local = options.args[0];
        const remote = options.args[1] ?? baseName(local);
        paths.remote = remote;
        if (remote === "") {
          throw new UsageError(
            `cannot name a remote file after '${local}'; give REMOTE`,
            "put",
          );
        }
        await using client = await connect(connectOptionsOf(options));
        const result = await client.put(local, remote, {
          ...resumeOptions(options, `put ${local}`),
          overwrite: options.force,
          onProgress: onProgress(remote),
        }).finally(() => progress.finish());
        if (options.json) {
          out(jsonLine(remote, { result }));
          break;
        }
        out(
          `${remote}: ${result.bytes} bytes uploaded in ${
            result.seconds.toFixed(2)
          } s, sha256 ${result.sha256}`,
        );
        break;
      }
    }
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`ferry: ${error.message}`);
      err("");
      err(COMMAND_USAGE[error.command ?? "help"]);
      return EXIT_USAGE;
    }
    if (error instanceof FerryError) {
      progress.finish();
      if (options.json && (command === "get" || command === "put")) {
        out(jsonLine(paths.remote ?? subjectArgs[0], { error }));
      }
      err(`ferry: ${subject}: ${describeFailure(error, command, paths)}`);
      return EXIT_FAILED;
    }
    err(`ferry: ${messageOf(error)}`);
    return EXIT_FAILED;
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
