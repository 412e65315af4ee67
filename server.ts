#!/usr/bin/env -S deno run --allow-net --allow-read --allow-env=FERRY_TOKEN
/**
 * The ferry server: serves one folder over TCP to ferry clients (the
 * protocol in `protocol.ts`) and, on the same port, to the lab's classic
 * client.
 *
 * Run it from a shell (uploads with `--allow-upload` also need
 * `--allow-write`):
 *
 * ```sh
 * deno run --allow-net --allow-read server.ts --root ./public
 * deno run --allow-net --allow-read --allow-write server.ts --root ./inbox --allow-upload
 * FERRY_TOKEN=s3cret deno run --allow-net --allow-read --allow-env=FERRY_TOKEN \
 *   server.ts --host 0.0.0.0 --cert cert.pem --key key.pem
 * ```
 *
 * With a token (`--token-file PATH`, `FERRY_TOKEN` or `--token`) every
 * client must answer the `AUTH` challenge (see `_server_auth.ts`); with
 * `--cert` and `--key` the server speaks TLS.
 *
 * Each connection is its own task: the first byte decides the protocol
 * (`0x00`, the start of a ferry `HELLO`, or anything else for a classic file
 * name), and a failure in one connection never reaches another. Every path
 * goes through the root jail in `_path_jail.ts`; uploads are written to a
 * temporary `.ferry-<hex>.part` file in the target folder and renamed into
 * place only after their SHA-256 checked out.
 *
 * @example Serve a folder from a program
 * ```ts ignore
 * import { serve } from "./server.ts";
 * const controller = new AbortController();
 * const server = await serve({ root: "./public", port: 0, signal: controller.signal });
 * console.log(`Listening on port ${server.addr.port}`);
 * controller.abort();
 * await server.finished;
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import * as nodePath from "node:path";
import { parseArgs } from "node:util";
import { type BulkBuffers, copyHashed, makeBulkBuffers } from "./_copy.ts";
import { delay } from "./_delay.ts";
import {
  CLASSIC_SIZE_GAP_MS,
  type ClassicSession,
  serveClassic,
} from "./_classic_server.ts";
import {
  checkOpened,
  isInside,
  openInside,
  resolveExisting,
  resolveExistingSync,
  resolveTarget,
  segmentProblem,
} from "./_path_jail.ts";
import { sendSmallFile, SMALL_FILE_BYTES } from "./_small_get.ts";
import {
  AuthThrottle,
  clientHelloBytes,
  DEFAULT_AUTH_FAILURE_DELAY_MS,
  makeServerNonce,
  verifyAuth,
} from "./_server_auth.ts";
import {
  loadTlsFiles,
  startupWarnings,
  type TlsFiles,
} from "./_server_cli_security.ts";
import { resolveToken, type TokenSource } from "./_token_source.ts";
import { makeFolder } from "./_server_mkdir.ts";
import { formatLogJson, formatLogText, LOG_FORMATS } from "./_server_log.ts";
import {
  BusyRefusals,
  checkRequestLimits,
  DEFAULT_DRAIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_MAX_PATH_DEPTH,
  IoActivity,
  LIMIT_FLAGS,
  type LimitOptions,
  LIMITS_USAGE,
  limitsFromFlags,
  lingerClose,
  resolveLimits,
  type ServerLimits,
  trackIO,
  UploadSink,
} from "./_server_limits.ts";
import {
  DEFAULT_HASH_CACHE_ENTRIES,
  HashCache,
  sameVersion,
} from "./_hash_cache.ts";
import {
  openResumablePart,
  resumablePartName,
  TrackedWriter,
  UploadParts,
} from "./_upload_part.ts";
import { FerryError, isWireErrorCode } from "./errors.ts";
import {
  encodeMessage,
  entriesFrameBytes,
  type Entry,
  entryBytes,
  FRAME_HEADER_BYTES,
  FRAME_TYPES,
  FrameReader,
  type GetMessage,
  HELLO_AUTH_REQUIRED,
  type ListMessage,
  MAX_FRAME_BYTES,
  MAX_PATH_BYTES,
  type Message,
  PROTOCOL_VERSION,
  type PutMessage,
  type StatMessage,
  writeAll,
} from "./protocol.ts";

export { CLASSIC_SIZE_GAP_MS };
export {
  DEFAULT_DRAIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_MAX_PATH_DEPTH,
  type LimitOptions,
};

/**
 * The port ferry listens on unless told otherwise (the classic lab port).
 *
 * @example Use the default port
 * ```ts
 * import { DEFAULT_PORT } from "./server.ts";
 * console.assert(DEFAULT_PORT === 65432);
 * ```
 */
export const DEFAULT_PORT = 65432;

/**
 * How long a peer may take to send its first bytes and its `HELLO` (or a
 * classic `READY`) unless told otherwise, in milliseconds.
 *
 * @example Use the default timeout
 * ```ts
 * import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from "./server.ts";
 * console.assert(DEFAULT_HANDSHAKE_TIMEOUT_MS === 10_000);
 * ```
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Options of {@linkcode serve}. The limits (`maxConnections`,
 * `idleTimeoutMs`, `drainMs`, `maxFrameBytes`, `maxPathDepth`,
 * `maxListEntries`, `maxUploadBytes`) are described in
 * {@linkcode LimitOptions}.
 *
 * @example Allow uploads on any free port
 * ```ts
 * import type { ServeOptions } from "./server.ts";
 * const options: ServeOptions = { root: "./inbox", port: 0, allowUpload: true };
 * console.assert(options.allowUpload);
 * ```
 */
export interface ServeOptions extends LimitOptions {
  /**
   * Folder to serve; resolved once, with `Deno.realPath`, at start.
   *
   * @default {"."}
   */
  root?: string;
  /**
   * Address to listen on.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks any free port (see `addr`).
   *
   * @default {65432}
   */
  port?: number;
  /**
   * Accept `PUT` requests (the process then needs `--allow-write`).
   *
   * @default {false}
   */
  allowUpload?: boolean;
  /**
   * Answer classic (seed) clients too; when false, a connection that does
   * not start with a ferry `HELLO` is closed.
   *
   * @default {true}
   */
  classic?: boolean;
  /**
   * Longest wait, in milliseconds, for a peer's first bytes and its whole
   * `HELLO`, and for a classic client's `READY`.
   *
   * @default {10000}
   */
  handshakeTimeoutMs?: number;
  /**
   * Shared secret clients must prove they know (the `AUTH` step); the
   * secret itself never crosses the wire. With a token, classic clients
   * are refused (they cannot authenticate).
   *
   * @default {undefined} (no authentication)
   */
  token?: string;
  /**
   * Delay before the first `UNAUTHORIZED` reply to an address, in
   * milliseconds; it doubles with each further failure from that address
   * (up to 5 s) and is forgotten after 10 minutes without a failure or on
   * success.
   *
   * @default {250}
   */
  authFailureDelayMs?: number;
  /**
   * TLS certificate chain, PEM text (not a file name); with `key`, the
   * server listens with TLS (`Deno.listenTls`).
   *
   * @default {undefined} (plain TCP)
   */
  cert?: string;
  /**
   * TLS private key of `cert`, PEM text.
   *
   * @default {undefined}
   */
  key?: string;
  /**
   * Aborting it stops the server gracefully: no new connections;
   * connections between requests close at once; a request in progress
   * finishes (for up to `drainMs`), then its connection closes; after that
   * everything is closed. No upload temporary file is left behind, except
   * the part of a resumable upload that was cut (its client can continue).
   */
  signal?: AbortSignal;
  /** Called once per request; the library never prints. */
  onLog?: (event: ServerLogEvent) => void;
  /**
   * How many whole-file SHA-256 digests to keep in memory (least recently
   * used first out), so that repeated and resumed downloads of an unchanged
   * file are not hashed again; 0 turns the cache off. See `_hash_cache.ts`
   * for what makes a file "unchanged".
   *
   * @default {1024}
   */
  hashCacheEntries?: number;
}

/**
 * One request, as the server reports it to `onLog`.
 *
 * @example Format an event
 * ```ts
 * import type { ServerLogEvent } from "./server.ts";
 * const event: ServerLogEvent = {
 *   time: new Date(0), peer: "127.0.0.1:50000", protocol: "ferry", request: "GET",
 *   path: "a.txt", bytes: 3, result: "ok", durationMs: 1,
 * };
 * console.assert(`${event.request} ${event.path} ${event.result}` === "GET a.txt ok");
 * ```
 */
export interface ServerLogEvent {
  /** When the request arrived. */
  time: Date;
  /** The peer's address, `host:port` (IPv6 hosts in brackets). */
  peer: string;
  /** Which protocol the peer spoke. */
  protocol: "ferry" | "classic";
  /**
   * `LIST`, `STAT`, `GET`, `PUT`, `MKDIR`, `HELLO` (a failed handshake, or
   * a connection refused with `BUSY` over `maxConnections`) or `INVALID`.
   */
  request: string;
  /** The wire path of the request (`""` for the root). */
  path: string;
  /** File bytes sent or received. */
  bytes: number;
  /** `"ok"`, or the error code the request ended with. */
  result: string;
  /** How long the request took, in milliseconds. */
  durationMs: number;
  /** Set on a `GET` answered with a cached SHA-256 (nothing was hashed). */
  cached?: boolean;
}

/**
 * A running server.
 *
 * @example Stop a server
 * ```ts ignore
 * import { serve } from "./server.ts";
 * await using server = await serve({ port: 0 });
 * console.log(server.addr.port);
 * // leaving the block calls server.shutdown()
 * ```
 */
export interface FerryServer {
  /** The address the server listens on (the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /**
   * Settles when the server has stopped: the listener is closed, every
   * connection handler has returned and every file it opened is closed.
   */
  readonly finished: Promise<void>;
  /**
   * Stops the server as aborting its signal does.
   *
   * @returns {@linkcode FerryServer.finished}.
   */
  shutdown(): Promise<void>;
  /**
   * Stops the server, for `await using`.
   *
   * @returns {@linkcode FerryServer.finished}.
   */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a ferry server on `hostname:port` serving the folder `root`.
 *
 * @param options Where to listen, what to serve, how to stop.
 * @returns The running server, already listening.
 * @throws {FerryError} `NOT_FOUND` if `root` is missing or not a folder.
 * @throws {RangeError} If `port`, `handshakeTimeoutMs`, `authFailureDelayMs`
 * or a limit is out of range.
 * @throws {TypeError} If `token` is empty, or only one of `cert` and `key`
 * is given.
 * @throws {Deno.errors.AddrInUse} If the port is taken (and other listen
 * errors as `Deno.listen` throws them).
 *
 * @example Serve the current folder on a free port, then stop
 * ```ts ignore
 * import { serve } from "./server.ts";
 * const controller = new AbortController();
 * const server = await serve({ port: 0, signal: controller.signal });
 * console.log(`Listening on ${server.addr.hostname}:${server.addr.port}`);
 * controller.abort();
 * await server.finished;
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<FerryServer> {
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Port must be an integer from 0 to 65535: ${port}`);
  }
  const handshakeTimeoutMs = options.handshakeTimeoutMs ??
    DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (!(handshakeTimeoutMs > 0) || !Number.isFinite(handshakeTimeoutMs)) {
    throw new RangeError(
      `handshakeTimeoutMs must be a positive number: ${handshakeTimeoutMs}`,
    );
  }
  if (options.token !== undefined && options.token === "") {
    throw new TypeError("token must not be empty");
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new TypeError("cert and key must be given together");
  }
  const auth = options.token === undefined ? undefined : {
    token: options.token,
    throttle: new AuthThrottle({
      baseDelayMs: options.authFailureDelayMs ?? DEFAULT_AUTH_FAILURE_DELAY_MS,
    }),
  };
  const limits = resolveLimits(options);
  const realRoot = await resolveRoot(options.root ?? ".");
  const context: ServerContext = {
    realRoot,
    limits,
    allowUpload: options.allowUpload ?? false,
    classic: options.classic ?? true,
    handshakeTimeoutMs,
    onLog: options.onLog,
    auth,
    hashCache: makeHashCache(options.hashCacheEntries),
    uploadParts: new UploadParts(),
  };
  // Deno.listenTls returns a listener with the same accept() and Conn
  // interface; the TLS handshake runs on the first read, under the
  // handshake deadline.
  const hostname = options.hostname ?? "127.0.0.1";
  const listener: Deno.Listener = options.cert !== undefined &&
      options.key !== undefined
    ? Deno.listenTls({
      hostname,
      port,
      transport: "tcp",
      cert: options.cert,
      key: options.key,
    })
    : Deno.listen({ hostname, port, transport: "tcp" });
  return new Server(listener, context, options.signal);
}

/** Settings every connection handler reads. */
interface ServerContext {
  realRoot: string;
  limits: ServerLimits;
  allowUpload: boolean;
  classic: boolean;
  handshakeTimeoutMs: number;
  onLog: ((event: ServerLogEvent) => void) | undefined;
  /** Set when clients must authenticate. */
  auth: { token: string; throttle: AuthThrottle } | undefined;
  /** Whole-file digests; undefined when `hashCacheEntries` is 0. */
  hashCache: HashCache | undefined;
  /** Resumable upload parts being written, and the stale-part sweep. */
  uploadParts: UploadParts;
}

function makeHashCache(entries: number | undefined): HashCache | undefined {
  entries ??= DEFAULT_HASH_CACHE_ENTRIES;
  if (!Number.isInteger(entries) || entries < 0) {
    throw new RangeError(
      `hashCacheEntries must be a non-negative integer: ${entries}`,
    );
  }
  return entries === 0 ? undefined : new HashCache(entries);
}

async function resolveRoot(root: string): Promise<string> {
  let realRoot: string;
  try {
    realRoot = await Deno.realPath(root);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory
    ) {
      throw new FerryError("NOT_FOUND", `Root folder not found: ${root}`, {
        cause: error,
      });
    }
    throw error;
  }
  if (!(await Deno.stat(realRoot)).isDirectory) {
    throw new FerryError("NOT_FOUND", `Root is not a folder: ${root}`);
  }
  return realRoot;
}

class Server implements FerryServer {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  #listener: Deno.Listener;
  #stop = new AbortController();
  #sessions = new Set<Session>();
  #handlers = new Set<Promise<void>>();
  #refusals = new BusyRefusals();

  constructor(
    listener: Deno.Listener,
    context: ServerContext,
    signal: AbortSignal | undefined,
  ) {
    this.#listener = listener;
    this.addr = listener.addr as Deno.NetAddr;
    const onAbort = () => this.#stop.abort();
    if (signal?.aborted) this.#stop.abort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    this.finished = this.#run(context).finally(() =>
      signal?.removeEventListener("abort", onAbort)
    );
  }

  shutdown(): Promise<void> {
    this.#stop.abort();
    return this.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #run(context: ServerContext): Promise<void> {
    const stop = this.#stop.signal;
    const { limits } = context;
    let listening = true;
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const closeAll = () => {
      for (const session of this.#sessions) session.close();
    };
    const onStop = () => {
      if (listening) {
        listening = false;
        this.#listener.close();
      }
      // Graceful: connections between requests close now, those in a
      // request right after it, and all of them at the drain deadline.
      this.#refusals.closeAll();
      for (const session of this.#sessions) session.stop();
      if (limits.drainMs === 0) closeAll();
      else drainTimer = setTimeout(closeAll, limits.drainMs);
    };
    // One sweep for all connections closes those whose peer has kept a
    // read or a write waiting longer than the idle timeout.
    const sweeper = setInterval(() => {
      const now = performance.now();
      for (const session of this.#sessions) {
        if (session.activity.stalled(now, limits.idleTimeoutMs)) {
          session.expire();
        }
      }
    }, Math.max(10, Math.min(1000, limits.idleTimeoutMs / 4)));
    if (stop.aborted) onStop();
    else stop.addEventListener("abort", onStop, { once: true });
    try {
      while (!stop.aborted) {
        let conn: Deno.Conn;
        try {
          conn = await this.#listener.accept();
        } catch {
          if (stop.aborted) break;
          // Accept errors (too many open files, a peer that reset before
          // accept) are per connection: pause briefly and keep serving.
          await delay(50, stop);
          continue;
        }
        if (stop.aborted) {
          conn.close(); // accepted in the same turn as the stop
          break;
        }
        this.#start(conn, context);
      }
    } finally {
      stop.removeEventListener("abort", onStop);
      if (listening) {
        listening = false;
        this.#listener.close();
      }
      while (this.#handlers.size > 0) {
        await Promise.allSettled([...this.#handlers]);
      }
      await this.#refusals.settled();
      clearInterval(sweeper);
      clearTimeout(drainTimer);
    }
  }

  #start(conn: Deno.Conn, context: ServerContext): void {
    if (this.#sessions.size >= context.limits.maxConnections) {
      this.#refusals.refuse(conn);
      emit(
        { peer: formatAddr(conn.remoteAddr as Deno.NetAddr) },
        context,
        {
          protocol: "ferry",
          request: "HELLO",
          path: "",
          bytes: 0,
          result: "BUSY",
        },
        new Date(),
        performance.now(),
      );
      return;
    }
    const session = new Session(conn, context.limits.maxFrameBytes);
    this.#sessions.add(session);
    const handler: Promise<void> = handleConnection(session, context)
      .catch(() => {
        // A handler reports its own errors; nothing may escape to others.
      })
      .finally(() => {
        session.close();
        this.#sessions.delete(session);
        this.#handlers.delete(handler);
      });
    this.#handlers.add(handler);
  }
}

/** One connection: its reader, its bulk buffers, its deadline. */
class Session implements ClassicSession {
  readonly conn: Deno.Conn;
  readonly reader: FrameReader;
  readonly peer: string;
  /** Times every read and write of `conn`, for the idle sweep. */
  readonly activity: IoActivity = new IoActivity();
  /** In the middle of a request: a stopping server lets it finish. */
  busy = false;
  #stopping = false;
  #closed = new AbortController();
  #timedOut = false;
  #buffers: BulkBuffers | undefined;

  constructor(conn: Deno.Conn, maxFrameBytes: number = MAX_FRAME_BYTES) {
    this.conn = trackIO(conn, this.activity);
    this.reader = new FrameReader(this.conn, { maxFrameBytes });
    this.peer = formatAddr(conn.remoteAddr as Deno.NetAddr);
  }

  /** Whether the server is stopping (no further request may start). */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** The server stops: close now, or after the request in progress. */
  stop(): void {
    this.#stopping = true;
    if (!this.busy) this.close();
  }

  /** The peer took too long: close, and let handlers see `timedOut`. */
  expire(): void {
    this.#timedOut = true;
    this.close();
  }

  get signal(): AbortSignal {
    return this.#closed.signal;
  }

  get timedOut(): boolean {
    return this.#timedOut;
  }

  bulkBuffers(): BulkBuffers {
    return this.#buffers ??= makeBulkBuffers();
  }

  deadline(ms: number): () => void {
    const id = setTimeout(() => {
      this.#timedOut = true;
      this.close();
    }, ms);
    return () => clearTimeout(id);
  }

  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    try {
      this.conn.close();
    } catch {
      // Already closed by the peer's reset: nothing left to release.
    }
  }
}

/** `host:port`, with brackets around an IPv6 host. */
function formatAddr(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":")
    ? `[${addr.hostname}]`
    : addr.hostname;
  return `${host}:${addr.port}`;
}

function emit(
  session: { readonly peer: string },
  context: ServerContext,
  fields: Omit<ServerLogEvent, "time" | "peer" | "durationMs">,
  time: Date,
  started: number,
): void {
  if (!context.onLog) return;
  try {
    context.onLog({
      time,
      peer: session.peer,
      ...fields,
      durationMs: performance.now() - started,
    });
  } catch {
    // A failing log sink must not break the connection.
  }
}

async function handleConnection(
  session: Session,
  context: ServerContext,
): Promise<void> {
  try {
    // Small frames (and the classic EXISTS) must leave at once. TCP
    // connections have setNoDelay; a TLS one would set it on its TCP side.
    (session.conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
  } catch {
    // The peer may already be gone; the first read will tell.
  }
  const stopDeadline = session.deadline(context.handshakeTimeoutMs);
  try {
    let first: Uint8Array | null;
    try {
      first = await session.reader.peek();
    } catch {
      return; // reset, or closed by the deadline or a shutdown
    }
    if (first === null) return;
    if (first[0] !== FRAME_TYPES.hello) {
      stopDeadline();
      if (!context.classic) return;
      const time = new Date();
      const started = performance.now();
      if (context.auth) {
        // Classic clients cannot authenticate: closed without an answer.
        emit(
          session,
          context,
          {
            protocol: "classic",
            request: "GET",
            path: "",
            bytes: 0,
            result: "UNAUTHORIZED",
          },
          time,
          started,
        );
        return;
      }
      // The whole classic session is one request: a stopping server lets
      // it finish (within the drain time).
      if (session.stopping) return;
      session.busy = true;
      await serveClassic(session, {
        realRoot: context.realRoot,
        handshakeTimeoutMs: context.handshakeTimeoutMs,
        log: (record) =>
          emit(
            session,
            context,
            { protocol: "classic", ...record },
            time,
            started,
          ),
      });
      return;
    }
    const agreed = await handshake(session, context);
    stopDeadline();
    if (agreed) await serveRequests(session, context);
  } finally {
    stopDeadline();
    session.close();
  }
}

/** Reads the client's `HELLO` and answers it; true when a version is agreed. */
async function handshake(
  session: Session,
  context: ServerContext,
): Promise<boolean> {
  const time = new Date();
  const started = performance.now();
  const fail = async (code: string, message: string): Promise<false> => {
    emit(
      session,
      context,
      {
        protocol: "ferry",
        request: "HELLO",
        path: "",
        bytes: 0,
        result: code,
      },
      time,
      started,
    );
    if (code !== "TIMEOUT" && code !== "CONNECTION") {
      await sendError(session, code, message);
    }
    return false;
  };
  let hello: Message | null;
  try {
    hello = await session.reader.readMessage();
  } catch (error) {
    if (session.timedOut) return await fail("TIMEOUT", "");
    if (error instanceof FerryError && isWireErrorCode(error.code)) {
      return await fail(error.code, error.message);
    }
    return await fail("CONNECTION", "");
  }
  if (hello === null) return false;
  if (hello.type !== "hello") {
    return await fail("BAD_REQUEST", `Expected HELLO, got ${label(hello)}`);
  }
  if (
    hello.minVersion > PROTOCOL_VERSION || hello.maxVersion < PROTOCOL_VERSION
  ) {
    return await fail(
      "UNSUPPORTED_VERSION",
      `This server speaks version ${PROTOCOL_VERSION} only, the client ${hello.minVersion} to ${hello.maxVersion}`,
    );
  }
  const nonce = makeServerNonce();
  const serverHello = encodeMessage({
    type: "hello",
    minVersion: PROTOCOL_VERSION,
    maxVersion: PROTOCOL_VERSION,
    flags: context.auth ? HELLO_AUTH_REQUIRED : 0,
    nonce,
  });
  try {
    await writeAll(session.conn, serverHello);
  } catch {
    return false;
  }
  if (!context.auth) return true;
  const result = await verifyAuth(
    {
      reader: session.reader,
      writer: session.conn,
      host: (session.conn.remoteAddr as Deno.NetAddr).hostname,
      signal: session.signal,
    },
    {
      token: context.auth.token,
      version: PROTOCOL_VERSION,
      serverNonce: nonce,
      clientHello: clientHelloBytes(hello),
      serverHello,
    },
    context.auth.throttle,
    () => session.timedOut,
  );
  if (result === "ok") return true;
  emit(
    session,
    context,
    { protocol: "ferry", request: "HELLO", path: "", bytes: 0, result },
    time,
    started,
  );
  return false;
}

/** Per-request bookkeeping shared between a handler and the request loop. */
interface RequestState {
  /** File bytes moved so far. */
  bytes: number;
  /** Close the connection when the request fails (its byte stream is lost). */
  closeOnError: boolean;
  /** Do not answer a failure with `ERROR` (raw bytes are being sent). */
  silentOnError: boolean;
  /** A `GET` answered from the hash cache. */
  cached?: boolean;
}

async function serveRequests(
  session: Session,
  context: ServerContext,
): Promise<void> {
  while (!session.stopping) {
    let message: Message | null;
    try {
      message = await session.reader.readMessage();
    } catch (error) {
      if (error instanceof FerryError && isWireErrorCode(error.code)) {
        emit(
          session,
          context,
          {
            protocol: "ferry",
            request: "INVALID",
            path: "",
            bytes: 0,
            result: error.code,
          },
          new Date(),
          performance.now(),
        );
        await sendError(session, error.code, error.message);
      }
      return; // a frame we cannot parse leaves the stream unusable
    }
    if (message === null) return;
    session.busy = true;
    const time = new Date();
    const started = performance.now();
    const state: RequestState = {
      bytes: 0,
      closeOnError: false,
      silentOnError: false,
    };
    let result = "ok";
    try {
      checkRequestLimits(message, context.limits);
      switch (message.type) {
        case "list":
          await handleList(session, context, message);
          break;
        case "stat":
          await handleStat(session, context, message);
          break;
        case "get":
          await handleGet(session, context, message, state);
          break;
        case "put":
          await handlePut(session, context, message, state);
          break;
        case "mkdir":
          if (!context.allowUpload) {
            throw new FerryError("FORBIDDEN", "Uploads are not allowed");
          }
          await makeFolder(context.realRoot, message.path, {
            mtime: message.mtime,
            hidden: TEMP_NAME,
          });
          await writeAll(session.conn, encodeMessage({ type: "ok" }));
          break;
        default:
          state.closeOnError = true;
          throw new FerryError(
            "BAD_REQUEST",
            `Unexpected ${label(message)} message`,
          );
      }
    } catch (error) {
      const wire = toWireError(error, session);
      result = wire.code;
      if (!state.silentOnError && isWireErrorCode(wire.code)) {
        if (!await sendError(session, wire.code, wire.message)) {
          state.closeOnError = true;
        }
      }
      if (!isWireErrorCode(wire.code)) state.closeOnError = true;
    }
    emit(
      session,
      context,
      {
        protocol: "ferry",
        request: label(message),
        path: "path" in message ? message.path : "",
        bytes: state.bytes,
        result,
        ...(state.cached ? { cached: true } : {}),
      },
      time,
      started,
    );
    if (result !== "ok" && state.closeOnError) return;
    session.busy = false;
  }
  await lingerClose(session.conn, session.reader); // the server is stopping
}

/** Maps anything a handler threw to a code and a message safe to send. */
function toWireError(
  error: unknown,
  session: Session,
): { code: string; message: string } {
  if (session.timedOut) return { code: "TIMEOUT", message: "" };
  if (error instanceof FerryError) {
    return { code: error.code, message: error.message };
  }
  if (session.signal.aborted) return { code: "CONNECTION", message: "" };
  if (
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted
  ) {
    return { code: "CONNECTION", message: "" };
  }
  // Host details (paths, errno) stay on the server.
  return { code: "INTERNAL", message: "Internal server error" };
}

/** Sends `ERROR`; false when the connection is gone. */
async function sendError(
  session: Session,
  code: string,
  message: string,
): Promise<boolean> {
  try {
    await writeAll(
      session.conn,
      encodeMessage({ type: "error", code, message: message.slice(0, 1000) }),
    );
    return true;
  } catch {
    return false;
  }
}

function label(message: Message): string {
  return message.type.toUpperCase();
}

function mtimeOf(info: Deno.FileInfo): number {
  return info.mtime?.getTime() ?? 0;
}

const encoder = new TextEncoder();

/** Names of upload temporaries, hidden from listings and refused. */
const TEMP_NAME = /^\.ferry-[0-9a-f]+\.part$/;

function refuseTempName(segments: string[], wirePath: string): void {
  const name = segments.at(-1);
  if (name !== undefined && TEMP_NAME.test(name)) {
    throw new FerryError("FORBIDDEN", `Path not allowed: ${wirePath}`);
  }
}

function toEntry(name: string, info: Deno.FileInfo): Entry | undefined {
  if (info.isFile) {
    return { name, kind: "file", size: info.size, mtime: mtimeOf(info) };
  }
  if (info.isDirectory) {
    return { name, kind: "dir", size: 0, mtime: mtimeOf(info) };
  }
  return undefined; // sockets, pipes, devices are not served
}

async function handleStat(
  session: Session,
  context: ServerContext,
  message: StatMessage,
): Promise<void> {
  const found = await resolveExisting(context.realRoot, message.path);
  refuseTempName(found.segments, message.path);
  const entry = toEntry(found.segments.at(-1) ?? "", found.info);
  if (!entry) {
    throw new FerryError("FORBIDDEN", `Not a file or folder: ${message.path}`);
  }
  await writeAll(session.conn, encodeMessage({ type: "info", entry }));
}

/** One listed name: its entry, its real host path, whether a link led there. */
interface Child {
  entry: Entry;
  hostPath: string;
  link: boolean;
}

/** A folder whose children are being listed. */
interface ListFrame {
  prefix: string;
  children: Child[];
  next: number;
}

async function handleList(
  session: Session,
  context: ServerContext,
  message: ListMessage,
): Promise<void> {
  const found = await resolveExisting(context.realRoot, message.path);
  if (!found.info.isDirectory) {
    throw new FerryError("NOT_FOUND", `Not a folder: ${message.path}`);
  }
  const emptyFrameBytes = entriesFrameBytes([]);
  let batch: Entry[] = [];
  let batchBytes = emptyFrameBytes;
  let count = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await writeAll(
      session.conn,
      encodeMessage({ type: "entries", entries: batch }),
    );
    batch = [];
    batchBytes = emptyFrameBytes;
  };
  const add = async (entry: Entry) => {
    if (count >= context.limits.maxListEntries) {
      // The entries sent so far stand; ERROR comes instead of END.
      throw new FerryError(
        "TOO_LARGE",
        `Listing has more than ${context.limits.maxListEntries} entries`,
      );
    }
    const size = entryBytes(entry);
    if (batchBytes + size > FRAME_HEADER_BYTES + MAX_FRAME_BYTES) await flush();
    batch.push(entry);
    batchBytes += size;
    count++;
  };
  // Depth first, each folder right before its contents. A linked folder
  // whose target lies in the listed tree is shown but not entered (its
  // contents appear under their real place), and every real folder is
  // entered at most once, so link cycles and diamonds end.
  const entered = new Set<string>([found.hostPath]);
  const stack: ListFrame[] = [{
    prefix: "",
    children: await readChildren(context.realRoot, found.hostPath),
    next: 0,
  }];
  while (stack.length > 0) {
    const frame = stack.at(-1)!;
    if (frame.next >= frame.children.length) {
      stack.pop();
      continue;
    }
    const child = frame.children[frame.next++];
    const name = frame.prefix + child.entry.name;
    if (encoder.encode(name).length > MAX_PATH_BYTES) {
      continue; // too long a name to put on the wire
    }
    await add({ ...child.entry, name });
    if (!message.recursive || child.entry.kind !== "dir") continue;
    if (child.link && isInside(found.hostPath, child.hostPath)) continue;
    if (entered.has(child.hostPath)) continue;
    entered.add(child.hostPath);
    let children: Child[];
    try {
      children = await readChildren(context.realRoot, child.hostPath);
    } catch {
      continue; // an unreadable subfolder is listed but not entered
    }
    stack.push({ prefix: name + "/", children, next: 0 });
  }
  await flush();
  await writeAll(session.conn, encodeMessage({ type: "end", count }));
}

/**
 * Reads a folder: entries with servable names, symbolic links resolved to
 * their targets (and dropped when those lie outside the root or are
 * missing), folders first, then by name.
 */
async function readChildren(
  realRoot: string,
  folder: string,
): Promise<Child[]> {
  const children: Child[] = [];
  for await (const dirEntry of Deno.readDir(folder)) {
    const name = dirEntry.name;
    if (segmentProblem(name) !== undefined || TEMP_NAME.test(name)) continue;
    let hostPath = nodePath.join(folder, name);
    // Synchronous calls: a few microseconds each, against tens for a hop
    // through the thread pool; the folder is read in batches, and each
    // batch waits on the event loop, so other connections keep their turn.
    try {
      if (dirEntry.isSymlink) {
        hostPath = Deno.realPathSync(hostPath);
        if (!isInside(realRoot, hostPath)) continue;
      }
      const entry = toEntry(name, Deno.statSync(hostPath));
      if (entry) children.push({ entry, hostPath, link: dirEntry.isSymlink });
    } catch {
      // Vanished, dangling, looping or unreadable: not listed.
    }
  }
  return children.sort((a, b) =>
    a.entry.kind !== b.entry.kind
      ? (a.entry.kind === "dir" ? -1 : 1)
      : a.entry.name < b.entry.name
      ? -1
      : a.entry.name > b.entry.name
      ? 1
      : 0
  );
}

async function handleGet(
  session: Session,
  context: ServerContext,
  message: GetMessage,
  state: RequestState,
): Promise<void> {
  const found = resolveExistingSync(context.realRoot, message.path);
  refuseTempName(found.segments, message.path);
  if (!found.info.isFile) {
    throw new FerryError("FORBIDDEN", `Not a file: ${message.path}`);
  }
  if (message.offset === 0 && found.info.size <= SMALL_FILE_BYTES) {
    // Opened once, proven inside the root, sent in one write.
    const sent = await sendSmallFile({
      realRoot: context.realRoot,
      hostPath: found.hostPath,
      wirePath: message.path,
      conn: session.conn,
      buffers: session.bulkBuffers(),
      hashCache: context.hashCache,
    });
    if (sent !== undefined) {
      state.bytes = sent.bytes;
      if (sent.cached) state.cached = true;
      return;
    }
  }
  // Opened, then proven to be the file inside the root (a folder on the
  // path may have been swapped for a link out of it since the check).
  const file = await openInside(
    context.realRoot,
    found.hostPath,
    message.path,
    { read: true },
  );
  try {
    const observedAt = Date.now();
    const before = await file.stat();
    if (!before.isFile) {
      throw new FerryError("FORBIDDEN", `Not a file: ${message.path}`);
    }
    const { size } = before;
    const mtime = mtimeOf(before);
    const { offset } = message;
    if (offset > size) {
      throw new FerryError(
        "BAD_REQUEST",
        `Offset ${offset} is past the end of ${message.path} (${size} bytes)`,
      );
    }
    // A cached digest of this very version spares hashing: the prefix is
    // skipped, the bytes are only copied (see `_hash_cache.ts`).
    const cached = context.hashCache?.lookup(found.hostPath, before);
    const hash = cached ? undefined : createHash("sha256");
    const buffers = session.bulkBuffers();
    if (cached) {
      state.cached = true;
      if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
    } else if (offset > 0) {
      const hashed = await copyHashed(file, undefined, offset, hash, buffers);
      if (hashed < offset) {
        throw new FerryError(
          "CHANGED",
          `File changed while it was read: ${message.path}`,
        );
      }
    }
    await writeAll(
      session.conn,
      encodeMessage({ type: "data", size, offset, mtime }),
    );
    // From here until the last raw byte, a failure cannot be reported in
    // band: the client counts bytes, so the connection has to close.
    state.closeOnError = true;
    state.silentOnError = true;
    const sent = await copyHashed(
      file,
      session.conn,
      size - offset,
      hash,
      buffers,
      (done) => state.bytes = done,
    );
    if (sent < size - offset) {
      throw new FerryError(
        "CHANGED",
        `File shrank while it was sent: ${message.path}`,
      );
    }
    state.closeOnError = false;
    state.silentOnError = false;
    // Size, times and inode as before: the bytes sent are one version of
    // the file, and a cached digest is that version's.
    const after = await file.stat();
    if (!sameVersion(before, after)) {
      throw new FerryError(
        "CHANGED",
        `File changed while it was sent: ${message.path}`,
      );
    }
    let digest = cached;
    if (digest === undefined) {
      digest = hash!.digest();
      context.hashCache?.store(found.hostPath, before, digest, observedAt);
    }
    await writeAll(
      session.conn,
      encodeMessage({ type: "hash", sha256: digest }),
    );
  } finally {
    file.close();
  }
}

async function handlePut(
  session: Session,
  context: ServerContext,
  message: PutMessage,
  state: RequestState,
): Promise<void> {
  if (!context.allowUpload) {
    throw new FerryError("FORBIDDEN", "Uploads are not allowed");
  }
  const target = await resolveTarget(context.realRoot, message.path);
  refuseTempName(target.segments, message.path);
  if (target.existing && !message.overwrite) {
    throw new FerryError("EXISTS", `Already exists: ${message.path}`);
  }
  await context.uploadParts.sweep(target.folder);
  // A resumable upload goes to a part named after the upload, which a cut
  // keeps and a retry continues (see `_upload_part.ts`); any other to a
  // fresh random name.
  const resumable = message.resume;
  let tempPath: string;
  let file: Deno.FsFile;
  let offset = 0;
  let hash = createHash("sha256");
  let release: (() => void) | undefined;
  if (resumable) {
    tempPath = nodePath.join(
      target.folder,
      resumablePartName(target.hostPath, message.size, message.mtime),
    );
    release = await context.uploadParts.claim(tempPath, () => session.close());
    try {
      ({ file, offset, hash } = await openResumablePart(
        tempPath,
        message.size,
        session.bulkBuffers(),
      ));
    } catch (error) {
      release();
      throw error;
    }
  } else {
    tempPath = nodePath.join(target.folder, tempName());
    file = await Deno.open(tempPath, { write: true, createNew: true });
  }
  try {
    // The folder may have been swapped for a link out of the root since
    // it was resolved: prove the file is inside before writing to it.
    await checkOpened(
      context.realRoot,
      tempPath,
      message.path,
      await file.stat(),
    );
  } catch (error) {
    file.close();
    release?.();
    throw error;
  }
  // A failed write (disk full, ...) drops the temporary file and the rest
  // of the bytes; the client hears INTERNAL after its HASH.
  const sink = new UploadSink(file, tempPath);
  const writer = new TrackedWriter(sink);
  let fileOpen = true;
  let placed = false;
  // Set while a cut connection would leave a resumable part worth keeping.
  let receiving = false;
  let keepPart = false;
  try {
    await writeAll(session.conn, encodeMessage({ type: "ready", offset }));
    // The client now streams raw bytes: if anything fails before they are
    // all read, the stream is out of step and the connection has to close.
    state.closeOnError = true;
    receiving = true;
    const received = await copyHashed(
      session.reader,
      writer,
      message.size - offset,
      hash,
      session.bulkBuffers(),
      (done) => state.bytes = done,
    );
    if (received < message.size - offset) {
      state.silentOnError = true;
      throw new FerryError("CONNECTION", "Upload cut short");
    }
    const reply = await session.reader.readMessage();
    if (reply === null) {
      state.silentOnError = true;
      throw new FerryError("CONNECTION", "Upload cut short before its HASH");
    }
    receiving = false;
    if (reply.type !== "hash") {
      throw new FerryError("BAD_REQUEST", `Expected HASH, got ${label(reply)}`);
    }
    state.closeOnError = false;
    sink.check();
    const digest = hash.digest();
    if (!equalBytes(digest, reply.sha256)) {
      throw new FerryError(
        "INTEGRITY",
        `SHA-256 mismatch, upload discarded: ${message.path}`,
      );
    }
    await sink.sync();
    file.close();
    fileOpen = false;
    if (message.mtime !== undefined) {
      await Deno.utime(tempPath, new Date(), new Date(message.mtime));
    }
    const ours = await Deno.stat(tempPath);
    await place(tempPath, target.hostPath, message);
    placed = true;
    await cacheUpload(context, target.hostPath, ours, digest);
    await writeAll(session.conn, encodeMessage({ type: "ok" }));
  } catch (error) {
    // A cut (or a server shutdown) while the bytes come keeps a resumable
    // part; a bad frame, a failed write or a failed check drops it.
    keepPart = resumable && receiving && !sink.failed &&
      !(error instanceof FerryError && !CUT_CODES.has(error.code));
    throw error;
  } finally {
    await writer.settled();
    if (fileOpen) file.close();
    if (!placed && !keepPart) {
      await Deno.remove(tempPath).catch(() => {
        // Already gone: nothing to clean.
      });
    }
    release?.();
  }
}

/** Error codes of a connection that ended early (rather than misbehaved). */
const CUT_CODES: ReadonlySet<string> = new Set([
  "CONNECTION",
  "TRUNCATED",
  "TIMEOUT",
]);

/**
 * Remembers the digest of a file just uploaded, if the file at its place
 * is still the one that was renamed there.
 */
async function cacheUpload(
  context: ServerContext,
  hostPath: string,
  ours: Deno.FileInfo,
  digest: Uint8Array,
): Promise<void> {
  if (!context.hashCache) return;
  const observedAt = Date.now();
  const placedInfo = await Deno.stat(hostPath).catch(() => undefined);
  if (
    placedInfo && placedInfo.ino === ours.ino && placedInfo.dev === ours.dev &&
    placedInfo.size === ours.size &&
    mtimeOf(placedInfo) === mtimeOf(ours)
  ) {
    context.hashCache.store(hostPath, placedInfo, digest, observedAt, {
      upload: true,
    });
  }
}

/**
 * Moves a verified temporary file to its final name. Without overwrite, a
 * hard link is tried first: it fails atomically if the name was taken in the
 * meantime. File systems without hard links fall back to check and rename.
 */
async function place(
  tempPath: string,
  finalPath: string,
  message: PutMessage,
): Promise<void> {
  if (!message.overwrite) {
    try {
      await Deno.link(tempPath, finalPath);
      await Deno.remove(tempPath);
      return;
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new FerryError("EXISTS", `Already exists: ${message.path}`);
      }
    }
    try {
      await Deno.lstat(finalPath);
      throw new FerryError("EXISTS", `Already exists: ${message.path}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  } else {
    const existing = await Deno.lstat(finalPath).catch(() => undefined);
    if (existing && !existing.isFile && !existing.isSymlink) {
      throw new FerryError("FORBIDDEN", `Target is a folder: ${message.path}`);
    }
  }
  await Deno.rename(tempPath, finalPath);
}

function tempName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return `.ferry-${hex}.part`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Command line

const USAGE = `USAGE:
  server.ts [OPTIONS]

  Serves a folder to ferry clients and to the classic lab client.
  Run with: deno run --allow-net --allow-read [--allow-write]
            [--allow-env=FERRY_TOKEN] server.ts
  (--allow-write is needed for --allow-upload)

OPTIONS:
  --root DIR       folder to serve (default: .)
  --host HOST      address to listen on (default: 127.0.0.1)
  --port PORT      port to listen on, 0 for any free port (default: 65432)
  --allow-upload   accept uploads (PUT) into the root (default: off)
  --no-classic     refuse classic clients (default: classic clients served)
  --token SECRET   require clients to prove they know SECRET (default: none;
                   visible in ps: prefer FERRY_TOKEN or --token-file)
  --token-file PATH  read the token from the first line of PATH (default: none)
                   precedence: --token, then --token-file, then FERRY_TOKEN
                   (FERRY_TOKEN needs --allow-env=FERRY_TOKEN)
  --cert FILE      TLS certificate chain, PEM; needs --key (default: plain TCP)
  --key FILE       TLS private key, PEM; needs --cert (default: none)
${LIMITS_USAGE}
  --log FORMAT     request log on stderr, one line per request: text or json
                   (default: text)
  --quiet          do not log requests to stderr (default: one line each)
  -h, --help       print this help and exit`;

/** Parsed command line. */
interface Flags {
  root: string;
  host: string;
  port: number;
  allowUpload: boolean;
  classic: boolean;
  quiet: boolean;
  log: "text" | "json";
  help: boolean;
  token: string | undefined;
  tokenFile: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  limits: LimitOptions;
}

/** Parses the command line; throws a one-line message on a usage error. */
function parseFlags(args: string[]): Flags {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        root: { type: "string", default: "." },
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: String(DEFAULT_PORT) },
        "allow-upload": { type: "boolean", default: false },
        "no-classic": { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        log: { type: "string", default: "text" },
        help: { type: "boolean", short: "h", default: false },
        token: { type: "string" },
        "token-file": { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        ...LIMIT_FLAGS,
      },
    }));
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    throw new UsageError(text.split(". ")[0].replace(/\.$/, ""));
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new UsageError(`bad port: ${values.port}`);
  }
  if (values.host === "") throw new UsageError("empty --host");
  if (!LOG_FORMATS.includes(values.log)) {
    throw new UsageError(`bad --log format: ${values.log} (text or json)`);
  }
  let limits: LimitOptions;
  try {
    limits = limitsFromFlags(values);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    root: values.root,
    host: values.host,
    port,
    allowUpload: values["allow-upload"],
    classic: !values["no-classic"],
    quiet: values.quiet,
    log: values.log as "text" | "json",
    help: values.help,
    token: values.token,
    tokenFile: values["token-file"],
    cert: values.cert,
    key: values.key,
    limits,
  };
}

class UsageError extends Error {}

async function main(): Promise<void> {
  let flags: Flags;
  try {
    flags = parseFlags(Deno.args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`ferry-server: ${error.message}`);
    console.error(USAGE);
    Deno.exit(2);
  }
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  if (flags.allowUpload) {
    const write = await Deno.permissions.query({
      name: "write",
      path: flags.root,
    });
    if (write.state !== "granted") {
      console.error(
        "ferry-server: --allow-upload needs write permission (run deno with --allow-write)",
      );
      Deno.exit(2);
    }
  }
  let token: TokenSource;
  let tls: TlsFiles | undefined;
  try {
    token = await resolveToken(flags.token, flags.tokenFile);
    tls = await loadTlsFiles(flags.cert, flags.key);
  } catch (error) {
    if (!(error instanceof FerryError)) throw error;
    const reason = error.message.charAt(0).toLowerCase() +
      error.message.slice(1);
    console.error(`ferry-server: ${reason}`);
    Deno.exit(2);
  }
  const controller = new AbortController();
  const quiet = flags.quiet;
  let server: FerryServer;
  let realRoot: string;
  try {
    server = await serve({
      root: flags.root,
      hostname: flags.host,
      port: flags.port,
      allowUpload: flags.allowUpload,
      classic: flags.classic,
      ...flags.limits,
      token: token.token,
      cert: tls?.cert,
      key: tls?.key,
      signal: controller.signal,
      onLog: quiet ? undefined : (event) =>
        console.error(
          flags.log === "json" ? formatLogJson(event) : formatLogText(event),
        ),
    });
    realRoot = await Deno.realPath(flags.root);
  } catch (error) {
    controller.abort();
    const reason = error instanceof FerryError
      ? error.message.charAt(0).toLowerCase() + error.message.slice(1)
      : error instanceof Deno.errors.AddrInUse
      ? `cannot listen on ${flags.host}:${flags.port}: address in use`
      : `cannot start: ${error instanceof Error ? error.message : error}`;
    console.error(`ferry-server: ${reason}`);
    Deno.exit(1);
  }
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  const onSignal = () => controller.abort();
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const host = server.addr.hostname.includes(":")
    ? `[${server.addr.hostname}]`
    : server.addr.hostname;
  const mode = flags.allowUpload ? "uploads allowed" : "read-only";
  const warnings = startupWarnings({
    hostname: server.addr.hostname,
    token: token.token !== undefined,
    tls: tls !== undefined,
    allowUpload: flags.allowUpload,
    envReadable: token.envReadable,
  });
  for (const line of warnings) console.error(`ferry-server: ${line}`);
  const scheme = tls ? "tls" : "tcp";
  console.log(
    `Listening on ${scheme}://${host}:${server.addr.port} (root ${realRoot}, ${mode})`,
  );
  await server.finished;
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  Deno.exit(0);
}

if (import.meta.main) {
  await main();
}
