/**
 * Public types and defaults of the server library: {@linkcode ServeOptions},
 * {@linkcode ServerLogEvent} and {@linkcode FerryServer}. `server.ts`
 * re-exports them; internals import them from here, never from `server.ts`.
 *
 * @module
 */

import { DEFAULT_PORT as COMMON_DEFAULT_PORT } from "../_common/defaults.ts";
import type { LimitOptions } from "./limits.ts";
import type { FerryErrorCode } from "../errors.ts";
import type { Message } from "../protocol.ts";

/**
 * The port ferry listens on unless told otherwise (the classic lab port).
 *
 * @example Use the default port
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_PORT } from "../server.ts";
 * assert(DEFAULT_PORT === 65432);
 * ```
 */
export const DEFAULT_PORT: number = COMMON_DEFAULT_PORT;

/**
 * How long a peer may take to send its first bytes and its `HELLO` (or a
 * classic `READY`) unless told otherwise, in milliseconds.
 *
 * @example Use the default timeout
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from "../server.ts";
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
 * import type { ServeOptions } from "../server.ts";
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
   * Accept `DELETE` requests (a sync client's `put -r --sync --delete`):
   * files, links and folders inside the root, never through a symbolic
   * link, never the root. Only together with `allowUpload`: `serve()`
   * throws a `TypeError` otherwise.
   *
   * @default {false}
   */
  allowDelete?: boolean;
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
   * Servers sharing one root (behind a load balancer) take a lease on a
   * resumable upload's part before writing it; a lease its owner has not
   * refreshed for this long, in milliseconds, belongs to a dead server and
   * is taken over. A live owner makes another server's upload of the same
   * part wait up to three times this long, then fail with `BUSY`. On NFS,
   * keep the attribute cache time (`actimeo`) well below it. See
   * `_server/upload_lease.ts`.
   *
   * @default {10000}
   */
  uploadLeaseTimeoutMs?: number;
  /**
   * Expect a PROXY protocol header (version 1 or 2, as HAProxy's
   * `send-proxy-v2` sends) first on every connection, within
   * `handshakeTimeoutMs` (the `HELLO` then has its own), and take the
   * client's address from it (for the log, the failed-authentication
   * throttle and connection accounting: a connection is counted once its
   * header is in, and at most `maxConnections` may be waiting for theirs).
   * A connection without a valid header is logged (`PROXY`) and closed. Only
   * enable it behind a load balancer that always sends one. Not available
   * with TLS (`cert`): the header comes before the TLS handshake, and Deno
   * cannot start server-side TLS on an accepted connection.
   *
   * @default {false}
   */
  proxyProtocol?: boolean;
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
   * file are not hashed again; 0 turns the cache off. See `_server/hash_cache.ts`
   * for what makes a file "unchanged".
   *
   * @default {1024}
   */
  hashCacheEntries?: number;
  /**
   * Also answer HTTP (browsers, `curl`, `wget`) on this address, with
   * `Deno.serve`: the same root, jail, limits, token, TLS and log (see
   * `_server/http/`). `hostname` defaults to the ferry face's.
   *
   * @default {undefined} (no HTTP face)
   */
  http?: HttpOptions;
}

/**
 * Where the HTTP face of {@linkcode ServeOptions} listens.
 *
 * @example Any free port on the ferry face's address
 * ```ts
 * import assert from "node:assert/strict";
 * import type { HttpOptions } from "../server.ts";
 * const http: HttpOptions = { port: 0 };
 * assert(http.port === 0);
 * ```
 */
export interface HttpOptions {
  /**
   * Address to listen on.
   *
   * @default {ServeOptions.hostname}
   */
  hostname?: string;
  /** Port to listen on; 0 picks any free port (see `httpAddr`). */
  port: number;
}

/**
 * One request, as the server reports it to `onLog`.
 *
 * @example Format an event
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ServerLogEvent } from "../server.ts";
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
  protocol: "ferry" | "classic" | "http";
  /**
   * `LIST`, `STAT`, `GET`, `PUT`, `MKDIR`, `HELLO` (a failed handshake, or
   * a connection refused with `BUSY` over `maxConnections`), `INVALID`, or
   * `PROXY` (a connection refused for a missing or bad PROXY header, with
   * `result` `BAD_REQUEST`, `TRUNCATED` or `TIMEOUT`); a message that is
   * not a request is logged under its own name (`DATA`, ...) with
   * `BAD_REQUEST`. For `http`, the request method (`GET`, `HEAD`, `PUT`,
   * `POST`, ...; `OTHER` for a method HTTP does not define).
   */
  request:
    | Uppercase<Message["type"]>
    | "INVALID"
    | "PROXY"
    | "HEAD"
    | "POST"
    | "OPTIONS"
    | "PATCH"
    | "CONNECT"
    | "TRACE"
    | "OTHER";
  /** The wire path of the request (`""` for the root). */
  path: string;
  /** File bytes sent or received. */
  bytes: number;
  /**
   * `"ok"`, or the error code the request ended with (`RANGE` for an HTTP
   * range that cannot be satisfied), or what the server did to make room:
   * `EVICTED` (the longest-idle session, closed for a new connection),
   * `PART_EVICTED` (a kept upload part, removed).
   */
  result: "ok" | FerryErrorCode | "RANGE" | "EVICTED" | "PART_EVICTED";
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
 * import { serve } from "../server.ts";
 * await using server = await serve({ port: 0 });
 * console.log(server.addr.port);
 * // leaving the block calls server.shutdown()
 * ```
 */
export interface FerryServer {
  /** The address the server listens on (the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /**
   * The folder served, as `serve()` resolved it at start (an absolute path
   * without symbolic links, `Deno.realPath` of {@linkcode ServeOptions.root}).
   */
  readonly root: string;
  /** The address of the HTTP face, when `http` was given. */
  readonly httpAddr?: Deno.NetAddr;
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
