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
 * With a token (`--token SECRET`, else `--token-file PATH`, else
 * `FERRY_TOKEN`, which needs `--allow-env=FERRY_TOKEN`) every client must
 * answer the `AUTH` challenge (see `_server_auth.ts`); with `--cert` and
 * `--key` the server speaks TLS. `--max-connections`, `--idle-timeout`,
 * `--drain-seconds` and `--max-upload-bytes` set its limits, `--log json`
 * makes its request log JSON Lines and `--quiet` silences it; `--help`
 * lists every flag with its default. On Linux, run it with `-A` so that it
 * can ask `/proc/self/fd` where each opened file really is (Deno grants
 * that read with `--allow-all` only; see `_path_jail.ts`).
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
import { AuthThrottle, DEFAULT_AUTH_FAILURE_DELAY_MS } from "./_server_auth.ts";
import { Server } from "./_server_accept.ts";
import { BulkBufferPool } from "./_buffer_pool.ts";
import { main } from "./_server_cli.ts";
import type { ServerContext } from "./_server_context.ts";
import {
  DEFAULT_DRAIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_MAX_PATH_DEPTH,
  type LimitOptions,
  resolveLimits,
} from "./_server_limits.ts";
import { DEFAULT_HASH_CACHE_ENTRIES, HashCache } from "./_hash_cache.ts";
import { UploadParts } from "./_upload_part.ts";
import { FerryError } from "./errors.ts";

export { CLASSIC_SIZE_GAP_MS } from "./_classic_server.ts";
export {
  DEFAULT_DRAIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_LIST_ENTRIES,
  DEFAULT_MAX_PATH_DEPTH,
};
export type { LimitOptions } from "./_server_limits.ts";

/**
 * The port ferry listens on unless told otherwise (the classic lab port).
 *
 * @example Use the default port
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_PORT } from "./server.ts";
 * assert(DEFAULT_PORT === 65432);
 * ```
 */
export const DEFAULT_PORT = 65432;

/**
 * How long a peer may take to send its first bytes and its `HELLO` (or a
 * classic `READY`) unless told otherwise, in milliseconds.
 *
 * @example Use the default timeout
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from "./server.ts";
 * assert(DEFAULT_HANDSHAKE_TIMEOUT_MS === 10_000);
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
 * import assert from "node:assert/strict";
 * import type { ServeOptions } from "./server.ts";
 * const options: ServeOptions = { root: "./inbox", port: 0, allowUpload: true };
 * assert(options.allowUpload);
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
 * import assert from "node:assert/strict";
 * import type { ServerLogEvent } from "./server.ts";
 * const event: ServerLogEvent = {
 *   time: new Date(0), peer: "127.0.0.1:50000", protocol: "ferry", request: "GET",
 *   path: "a.txt", bytes: 3, result: "ok", durationMs: 1,
 * };
 * assert(`${event.request} ${event.path} ${event.result}` === "GET a.txt ok");
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
    bufferPool: new BulkBufferPool(),
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

if (import.meta.main) {
  await main();
}
