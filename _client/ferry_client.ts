/**
 * The ferry client session: {@linkcode connect} performs the handshake
 * (version, optional token, optional TLS) and returns a
 * {@linkcode FerryClient}, whose methods run one request at a time.
 * `client.ts` re-exports both.
 *
 * Only the class and `connect` are loaded with `client.ts`: the handshake
 * (`_client/handshake.ts`), the wire codec (`protocol.ts`) and the idle
 * watch are imported by `connect` or a client's first request, and the code
 * of downloads, uploads, many-file pipelines and sync when such a request
 * first runs. A process thus evaluates at start only what it uses: `--help`
 * none of it, `ls` no file or digest code.
 *
 * @module
 */

import type { BulkBuffers } from "../_common/copy.ts";
import type {
  ConnectOptions,
  TransferOptions,
  TransferResult,
} from "./types.ts";
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_LIST_BYTES,
  DEFAULT_MAX_LIST_ENTRIES,
} from "../_common/defaults.ts";
import { formatAddress } from "../_common/text.ts";
import { lateImport } from "../_common/late_import.ts";
import type { IdleWatch } from "./idle_watch.ts";
import type { Receiver } from "./receiver.ts";
import type { FileOutcome, SessionIo } from "./session_io.ts";
import type {
  GetListedOptions,
  GetManyItem,
  GetManyOptions,
} from "./tree_get.ts";
import type { PutManyItem, PutManyOptions } from "./tree_put.ts";
import type { SyncPutReport } from "./sync_put.ts";
import type { SyncOptions, SyncReport } from "./sync_report.ts";
import { FerryError } from "../errors.ts";
import type {
  ByteReader,
  ByteWriter,
  DigestAlgorithm,
  Entry,
  FrameReader,
  Message,
} from "../protocol.ts";

/**
 * How long {@linkcode connect} waits for the server's `HELLO`, in
 * milliseconds.
 *
 * @example Read the bound
 * ```ts
 * import assert from "node:assert/strict";
 * import { HANDSHAKE_TIMEOUT_MS } from "../client.ts";
 * assert(HANDSHAKE_TIMEOUT_MS === 10_000);
 * ```
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * `protocol.ts`'s `DEFAULT_DIGEST`, which the constructor needs before the
 * codec is loaded (`client_test.ts` checks that they agree).
 */
const DEFAULT_DIGEST: DigestAlgorithm = "xxh3-128";

/** The modules a session needs once it runs: see {@linkcode loadParts}. */
interface Parts {
  protocol: typeof import("../protocol.ts");
  copy: typeof import("../_common/copy.ts");
  idle: typeof import("./idle_watch.ts");
  errors: typeof import("./errors.ts");
  handled: typeof import("./handled.ts");
}

/**
 * Imports the codec, the bulk buffers, the idle watch and the error
 * mapping on a client's first request: a process that only imports
 * `client.ts` (`--help`) does not read them. After `connect` they are
 * already loaded.
 */
async function loadParts(): Promise<Parts> {
  const [protocol, copy, idle, errors, handled] = await Promise.all([
    lateImport<Parts["protocol"]>("../protocol.ts", import.meta.url),
    lateImport<Parts["copy"]>("../_common/copy.ts", import.meta.url),
    lateImport<Parts["idle"]>("./idle_watch.ts", import.meta.url),
    lateImport<Parts["errors"]>("./errors.ts", import.meta.url),
    lateImport<Parts["handled"]>("./handled.ts", import.meta.url),
  ]);
  return { protocol, copy, idle, errors, handled };
}

/**
 * A session with a ferry server, made by {@linkcode connect}.
 *
 * Requests run one after another: calls made while another is in flight wait
 * for it. A refusal by the server (an `ERROR` frame, such as `NOT_FOUND`)
 * leaves the session usable; a broken connection or an unexpected frame
 * closes it, and later calls fail with `CONNECTION`. A request that waits
 * {@linkcode ConnectOptions.idleTimeoutMs} (60 s) without a byte moving
 * either way fails with `TIMEOUT` and closes the session.
 *
 * @example Download a file
 * ```ts ignore
 * import { connect } from "../client.ts";
 * await using client = await connect({ port: 65432 });
 * const result = await client.get("notes.txt", "notes.txt");
 * console.log(`${result.bytes} bytes, ${result.algorithm} ${result.digest}`);
 * ```
 */
export class FerryClient {
  /** The negotiated protocol version. */
  readonly version: number;
  /** The digest algorithm the server chose, for every transfer. */
  readonly digest: DigestAlgorithm;
  #conn: Deno.Conn;
  #maxListEntries: number;
  #maxListBytes: number;
  #idleTimeoutMs: number;
  /** Set by {@linkcode FerryClient.#ready}, before the first request. */
  #parts: Parts | undefined;
  #reader: FrameReader | undefined;
  #signal: AbortSignal | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #buffers: BulkBuffers | undefined;
  /** Errors after which the frames are still in step with the server. */
  #recoverable = new WeakSet<object>();
  #source: ByteReader;
  #sink: ByteWriter;
  #onAbort: () => void;
  #watch: IdleWatch | undefined;
  #eagerPut: boolean;

  /**
   * Wraps a connection whose handshake is done; most code calls
   * {@linkcode connect} instead.
   *
   * @param conn The connection.
   * @param version The negotiated protocol version.
   * @param options `reader`: the frame reader used for the handshake (it may
   * hold buffered bytes); `digest`: the algorithm the handshake agreed on
   * (default `"xxh3-128"`); `eagerPut`: the server takes eager `PUT`s
   * (its `HELLO` said so; default false); `signal`: aborting it closes the
   * client;
   * `idleTimeoutMs`: see {@linkcode ConnectOptions.idleTimeoutMs} (default
   * 60000).
   */
  constructor(
    conn: Deno.Conn,
    version: number,
    options: {
      reader?: FrameReader;
      digest?: DigestAlgorithm;
      eagerPut?: boolean;
      signal?: AbortSignal;
      idleTimeoutMs?: number;
      maxListEntries?: number;
      maxListBytes?: number;
    } = {},
  ) {
    this.#conn = conn;
    this.#maxListEntries = options.maxListEntries ?? DEFAULT_MAX_LIST_ENTRIES;
    this.#maxListBytes = options.maxListBytes ?? DEFAULT_MAX_LIST_BYTES;
    this.version = version;
    this.digest = options.digest ?? DEFAULT_DIGEST;
    this.#eagerPut = options.eagerPut ?? false;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#reader = options.reader;
    this.#signal = options.signal;
    // The reader and the watch exist once #ready() has run, before any
    // request reads or writes.
    const fail = (error: unknown): Error => this.#transportError(error);
    const source = (): FrameReader => this.#reader!;
    const watch = (): IdleWatch => this.#watch!;
    const parts = (): Parts => this.#parts!;
    this.#source = {
      async read(p: Uint8Array): Promise<number | null> {
        try {
          return await source().read(p);
        } catch (error) {
          throw fail(error);
        }
      },
    };
    async function write(p: Uint8Array): Promise<number> {
      try {
        return await watch().write(p);
      } catch (error) {
        throw fail(error);
      }
    }
    this.#sink = {
      write(p: Uint8Array): Promise<number> {
        return parts().handled.handled(write(p));
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
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * console.log((await client.list()).map((entry) => entry.name));
   * ```
   */
  list(path = "", options: { recursive?: boolean } = {}): Promise<Entry[]> {
    return this.#run(async () => {
      const entries: Entry[] = [];
      for await (const batch of this.#listing(path, options.recursive)) {
        for (const entry of batch) entries.push(entry);
      }
      return entries;
    });
  }

  /**
   * Sends `LIST` and yields the entries of each `ENTRIES` frame as it
   * arrives, within the client's limits; ends after `END`.
   */
  async *#listing(
    path: string,
    recursive = false,
  ): AsyncGenerator<readonly Entry[]> {
    await this.#send({ type: "list", path, recursive });
    let count = 0;
    let bytes = 0;
    while (true) {
      const message = await this.#expect("entries", "end");
      if (message.type === "end") {
        if (message.count !== count) {
          throw new FerryError(
            "PROTOCOL",
            `END counts ${message.count} entries, ${count} were sent`,
          );
        }
        return;
      }
      for (const entry of message.entries) {
        bytes += entry.name.length;
        if (++count > this.#maxListEntries || bytes > this.#maxListBytes) {
          // The rest of the listing is still coming: the session closes.
          throw new FerryError(
            "TOO_LARGE",
            `Listing is over the client's limit of ${this.#maxListEntries} entries or ${this.#maxListBytes} bytes of names`,
          );
        }
      }
      yield message.entries;
    }
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
   * import { connect } from "../client.ts";
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
   * to `DEST` (with the remote modification time) once its digest matches
   * the server's; on a mismatch or a refusal it is removed. A connection
   * that breaks mid-transfer leaves `DEST.part` behind.
   *
   * With a `ByteWriter` or a `WritableStream` the bytes are delivered as they
   * arrive: the digest is still checked and a mismatch still throws
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
   * `INTEGRITY` if the digest differs, `CONNECTION` if the connection ends
   * early, `LOCAL` if the destination cannot be written.
   *
   * @example Download to a file and to standard output
   * ```ts ignore
   * import { connect } from "../client.ts";
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
        const { resumableGet } = await lateImport<
          typeof import("./resume.ts")
        >("./resume.ts", import.meta.url);
        return await resumableGet(this.#io(), {
          server: this.server,
          path,
          destination,
        }, options);
      }
      const since = performance.now();
      const [{ openReceiver }, { getFile }, { removePartRecord }] =
        await Promise.all([
          lateImport<typeof import("./receiver.ts")>(
            "./receiver.ts",
            import.meta.url,
          ),
          lateImport<typeof import("./receive.ts")>(
            "./receive.ts",
            import.meta.url,
          ),
          lateImport<typeof import("./resume.ts")>(
            "./resume.ts",
            import.meta.url,
          ),
        ]);
      let receiver: Receiver;
      try {
        receiver = await openReceiver(destination, options.overwrite ?? false);
      } catch (error) {
        throw this.#keep(error);
      }
      const result = await getFile(this.#io(), receiver, {
        path,
        onProgress: options.onProgress,
        since,
      });
      // A record of an earlier, resumable download of DEST is stale now.
      if (typeof destination === "string") {
        await removePartRecord(destination);
      }
      return result;
    });
  }

  /**
   * Uploads a file. The server keeps it only if the digest sent after the
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
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * await client.put("report.pdf", "docs/report.pdf", { overwrite: true });
   * ```
   */
  put(
    localPath: string,
    remotePath: string,
    options: TransferOptions = {},
  ): Promise<TransferResult> {
    return this.#run(async () => {
      const { putFile } = await lateImport<typeof import("./send_file.ts")>(
        "./send_file.ts",
        import.meta.url,
      );
      return await putFile(
        this.#io(),
        { local: localPath, remote: remotePath },
        options,
      );
    });
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
   * import { connect } from "../client.ts";
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
   * Asks the server for the digest (in the session's algorithm,
   * {@linkcode FerryClient.digest}) of a file, or of its first `length`
   * bytes (`SUM`), without fetching it. The server answers a whole file's
   * digest from its cache when the file has not changed since it last
   * hashed it.
   *
   * @param path File on the server.
   * @param options `length`: hash only bytes `0..length`.
   * @returns The digest (16 bytes for XXH3-128, 32 for SHA-256).
   * @throws {FerryError} `NOT_FOUND`, `FORBIDDEN` (also for a folder),
   * `BAD_REQUEST` for a `length` past the end, `CHANGED` if the file
   * changed while it was hashed; `CONNECTION` or `PROTOCOL` if the session
   * breaks.
   *
   * @example Compare a remote file with a local one
   * ```ts ignore
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * const digest = await client.sum("notes.txt");
   * console.log(digest.length);
   * ```
   */
  sum(path: string, options: { length?: number } = {}): Promise<Uint8Array> {
    return this.#run(async () => {
      await this.#send({ type: "sum", path, length: options.length });
      const reply = await this.#expect("hash");
      const { DIGEST_BYTES } = this.#parts!.protocol;
      if (reply.digest.length !== DIGEST_BYTES[this.digest]) {
        throw new FerryError(
          "PROTOCOL",
          `HASH of ${reply.digest.length} bytes in a ${this.digest} session`,
        );
      }
      return reply.digest;
    });
  }

  /**
   * Removes a file or folder on the server (`DELETE`); the server must
   * allow deletes (`--allow-delete`).
   *
   * @param path File, symbolic link (removed itself) or folder.
   * @param options `recursive`: remove a folder with its contents.
   * @returns A promise that settles once the server answered `OK`.
   * @throws {FerryError} `FORBIDDEN` if deletes are off, the path is the
   * root, not allowed or goes through a symbolic link; `NOT_FOUND`;
   * `EXISTS` for a folder that is not empty without `recursive`.
   *
   * @example Remove an old folder
   * ```ts ignore
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * await client.delete("old", { recursive: true });
   * ```
   */
  delete(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    return this.#run(async () => {
      await this.#send({
        type: "delete",
        path,
        recursive: options.recursive ?? false,
      });
      await this.#expect("ok");
    });
  }

  /**
   * Makes the local folder `destination` match the remote folder
   * `remoteDir`, moving only what changed: files whose size and
   * modification time match are left alone (or, with `checksum`, whose
   * digests match); a grown file whose local copy is a verified prefix gets
   * only its new bytes; changed files are replaced through `.part`, SHA-256
   * check and rename; with `delete`, local entries the source lacks are
   * removed once everything else succeeded. See `README.md`, "Sync".
   *
   * @param remoteDir Folder on the server; `""` is the root.
   * @param destination Local folder, created if missing.
   * @param options `checksum`, `delete`, `dryRun`, callbacks.
   * @returns One record per entry (`created`, `updated`, `appended`,
   * `unchanged`, `deleted` or `failed`), counts and bytes sent.
   * @throws {FerryError} `NOT_FOUND` if `remoteDir` is not a folder,
   * `TOO_LARGE` if the listing is over the server's limit (nothing is
   * changed), `LOCAL` if `destination` is not a folder, `CONNECTION` if
   * the session breaks.
   *
   * @example Mirror a remote folder
   * ```ts ignore
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * const report = await client.syncGet("docs", "./docs", { delete: true });
   * console.log(report.counts.updated, report.counts.unchanged, report.bytes);
   * ```
   */
  async syncGet(
    remoteDir: string,
    destination: string,
    options: SyncOptions = {},
  ): Promise<SyncReport> {
    const { syncGet } = await lateImport<typeof import("./sync_get.ts")>(
      "./sync_get.ts",
      import.meta.url,
    );
    return await syncGet(this, remoteDir, destination, options);
  }

  /**
   * Makes the remote folder `remoteDir` match the local folder `localDir`,
   * the same way as {@linkcode FerryClient.syncGet} the other way round;
   * `delete` needs a server started with `--allow-delete`. Symbolic links
   * inside `localDir` are not followed (they are skipped, see `skipped`).
   *
   * @param localDir Local folder.
   * @param remoteDir Folder on the server, created if missing; `""` is the
   * root.
   * @param options `checksum`, `delete`, `dryRun`, callbacks.
   * @returns One record per entry, counts, bytes sent, and what was skipped.
   * @throws {FerryError} `LOCAL` if `localDir` is not a readable folder,
   * `TOO_LARGE` if the remote listing is over the server's limit,
   * `CONNECTION` if the session breaks.
   *
   * @example Publish a build folder
   * ```ts ignore
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * const report = await client.syncPut("./dist", "site", { delete: true });
   * console.log(`${report.counts.updated} updated, ${report.bytes} bytes sent`);
   * ```
   */
  async syncPut(
    localDir: string,
    remoteDir: string,
    options: SyncOptions = {},
  ): Promise<SyncPutReport> {
    const { syncPut } = await lateImport<typeof import("./sync_put.ts")>(
      "./sync_put.ts",
      import.meta.url,
    );
    return await syncPut(this, localDir, remoteDir, options);
  }

  /** The server's address, `host:port` (kept in resume records). */
  get server(): string {
    return formatAddress(this.#conn.remoteAddr as Deno.NetAddr);
  }

  /**
   * Downloads many files over this one connection, sending up to `window`
   * `GET`s ahead of the replies. Each file is received as by
   * {@linkcode FerryClient.get} (`DEST.part`, digest check, rename). A
   * refusal of one file does not stop the others; a broken session fails
   * the rest with `CONNECTION`. No other call runs in between.
   *
   * @param items Remote paths and local file paths.
   * @param options `window` (default 128), `overwrite`, callbacks.
   * @returns One outcome per item, in order: `result` or `error`.
   *
   * @example Download three files
   * ```ts ignore
   * import { connect } from "../client.ts";
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
    return this.#run(async () => {
      const { pipelineGet } = await lateImport<typeof import("./tree_get.ts")>(
        "./tree_get.ts",
        import.meta.url,
      );
      return await pipelineGet(this.#io(), items, options);
    });
  }

  /**
   * Lists `path` recursively and downloads files of it while the listing
   * still arrives, over this one connection: `plan` is given each batch of
   * entries as it comes and returns the files to get (in order), and up to
   * `window` `GET`s leave before the listing has ended (the server answers
   * them after its `END`). Each file is received as by
   * {@linkcode FerryClient.getMany}. No other call runs in between.
   *
   * @param path Folder on the server; `""` is the root.
   * @param plan Turns listed entries into files to get (and reports what
   * it refuses itself).
   * @param options `window` (default 128), `overwrite`, callbacks,
   * `onListed` once the listing has ended.
   * @returns One outcome per file planned, in order: `result` or `error`.
   * @throws {FerryError} What `list` throws (`NOT_FOUND`, `TOO_LARGE`, ...),
   * or what `plan` or `onListed` throws; the session closes if `GET`s were
   * sent by then.
   *
   * @example Get every file of a folder into the current folder
   * ```ts ignore
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * const outcomes = await client.getListed("docs", (entries) =>
   *   entries.filter((entry) => entry.kind === "file" && !entry.name.includes("/"))
   *     .map((entry) => ({ path: `docs/${entry.name}`, destination: entry.name })));
   * console.log(outcomes.length);
   * ```
   */
  getListed(
    path: string,
    plan: (entries: readonly Entry[]) => GetManyItem[],
    options: GetListedOptions = {},
  ): Promise<FileOutcome[]> {
    return this.#run(async () => {
      const { pipelineListed } = await lateImport<
        typeof import("./tree_get.ts")
      >("./tree_get.ts", import.meta.url);
      return await pipelineListed(
        this.#io(),
        { listing: this.#listing(path, true), plan },
        options,
      );
    });
  }

  /**
   * Creates folders and uploads files over this one connection, in order:
   * `MKDIR`s are pipelined, and each `PUT` leaves before the previous
   * file's `OK` has arrived. A refusal of one item does not stop the others;
   * a local file that changes while it is sent fails with `CHANGED` and
   * closes the session, and the items after it fail with `CONNECTION`.
   *
   * @param items Folders to make (with an optional time) and files to send;
   * any iterable, taken one item at a time as the previous one is sent (a
   * generator can make them as it goes). If it throws, the session is
   * closed as if lost: every item not yet answered, and none after, fails
   * with that error (a `FerryError` as it is, anything else as
   * `INTERNAL`), and the promise still resolves with the outcomes.
   * @param options `window` (default 32), `overwrite`, callbacks.
   * @returns One outcome per item, in order: `result` or `error`.
   *
   * @example Upload a folder of two files
   * ```ts ignore
   * import { connect } from "../client.ts";
   * await using client = await connect();
   * await client.putMany([
   *   { kind: "dir", remote: "docs" },
   *   { kind: "file", local: "a.txt", remote: "docs/a.txt" },
   *   { kind: "file", local: "b.txt", remote: "docs/b.txt" },
   * ]);
   * ```
   */
  putMany(
    items: Iterable<PutManyItem>,
    options: PutManyOptions = {},
  ): Promise<FileOutcome[]> {
    return this.#run(async () => {
      const { pipelinePut } = await lateImport<typeof import("./tree_put.ts")>(
        "./tree_put.ts",
        import.meta.url,
      );
      return await pipelinePut(this.#io(), items, options);
    });
  }

  /** The session as the pipelines see it. */
  #io(): SessionIo {
    const { encodeMessage, writeAll } = this.#parts!.protocol;
    const reader = this.#reader!;
    return {
      send: async (messages) => {
        let frames: Uint8Array[];
        try {
          frames = messages.map((message) => encodeMessage(message));
        } catch (error) {
          throw this.#keep(error); // nothing was sent: still in step
        }
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
      buffered: () => reader.bufferedBytes(),
      consume: (n) => reader.skip(n),
      fill: (n) => reader.fill(n),
      sink: this.#sink,
      digest: this.digest,
      eagerPut: this.#eagerPut,
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
   * import { connect } from "../client.ts";
   * const client = await connect();
   * client.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.stop();
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
   * import { connect } from "../client.ts";
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
        await this.#ready();
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

  /**
   * Loads the {@linkcode Parts} and makes the reader and the idle watch:
   * a reader from `connect` reads through the watch it carries.
   */
  async #ready(): Promise<void> {
    if (this.#parts !== undefined) return;
    const parts = await loadParts();
    const { IdleWatch, WatchedReader } = parts.idle;
    const given = this.#reader;
    const watch = given instanceof WatchedReader
      ? given.watch
      : new IdleWatch(this.#conn, this.#idleTimeoutMs);
    this.#reader = given ?? new parts.protocol.FrameReader(watch);
    this.#watch = watch;
    this.#parts = parts;
    watch.start(() => this.close());
  }

  /** Maps a failure of the connection (`TIMEOUT` once the watch fired). */
  #transportError(error: unknown): Error {
    if (this.#watch?.timedOut) return this.#watch.timeoutError(error);
    return this.#parts!.errors.transportError(error, this.#closed);
  }

  /** Marks an error that leaves the session in step with the server. */
  #keep(error: unknown): unknown {
    if (typeof error === "object" && error !== null) {
      this.#recoverable.add(error);
    }
    return error;
  }

  #bulkBuffers(): BulkBuffers {
    return this.#buffers ??= this.#parts!.copy.makeBulkBuffers();
  }

  async #send(message: Message): Promise<void> {
    const { encodeMessage, writeAll } = this.#parts!.protocol;
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
      message = await this.#reader!.readMessage();
    } catch (error) {
      throw this.#transportError(error);
    }
    if (message === null) {
      throw new FerryError("CONNECTION", "Connection closed by the server");
    }
    if (message.type === "error") {
      throw this.#keep(this.#parts!.errors.serverError(message));
    }
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
 * import { connect } from "../client.ts";
 * await using client = await connect({ hostname: "127.0.0.1", port: 65432 });
 * console.log(client.version, await client.list());
 * ```
 */
export async function connect(
  options: ConnectOptions = {},
): Promise<FerryClient> {
  const { openSession } = await lateImport<typeof import("./handshake.ts")>(
    "./handshake.ts",
    import.meta.url,
  );
  const { conn, version, reader, digest, eagerPut } = await openSession(
    options,
    HANDSHAKE_TIMEOUT_MS,
  );
  return new FerryClient(conn, version, {
    reader,
    signal: options.signal,
    digest,
    eagerPut,
    maxListEntries: options.maxListEntries,
    maxListBytes: options.maxListBytes,
  });
}
