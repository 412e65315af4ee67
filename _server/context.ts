/**
 * What the server's connection handlers share: the server-wide settings
 * ({@linkcode ServerContext}), one connection ({@linkcode Session}), the
 * bookkeeping of one request ({@linkcode RequestState}) and the request log.
 *
 * @module
 */

import type { BulkBufferPool } from "./buffer_pool.ts";
import type { BulkBuffers } from "../_common/copy.ts";
import type { ClassicSession } from "./classic.ts";
import type { AuthThrottle } from "./auth.ts";
import type { HashCache } from "./hash_cache.ts";
import { IoActivity, trackIO } from "./idle.ts";
import type { ServerLimits } from "./limits.ts";
import type { UploadParts } from "./upload_part.ts";
import type { KeptParts } from "./kept_parts.ts";
import { addressKey } from "./address_key.ts";
import { batchedConn, ReplyBatch } from "./reply_batch.ts";
import type { HeldFolder } from "./held_folder.ts";
import type { Libc } from "./dir_handle.ts";
import { ZeroCopySocket } from "./zero_copy.ts";
import {
  DEFAULT_DIGEST,
  type DigestAlgorithm,
  FrameReader,
  MAX_FRAME_BYTES,
  type Message,
} from "../protocol.ts";
import type { ServerLogEvent } from "./types.ts";
import { formatAddress } from "../_common/text.ts";

/** Settings every connection handler reads. */
export interface ServerContext {
  realRoot: string;
  limits: ServerLimits;
  allowUpload: boolean;
  /** `DELETE` allowed (only ever with `allowUpload`). */
  allowDelete: boolean;
  classic: boolean;
  handshakeTimeoutMs: number;
  /** Read a PROXY protocol header first on every connection. */
  proxyProtocol: boolean;
  onLog: ((event: ServerLogEvent) => void) | undefined;
  /** Set when clients must authenticate. */
  auth: { token: string; throttle: AuthThrottle } | undefined;
  /** Whole-file digests; undefined when `hashCacheEntries` is 0. */
  hashCache: HashCache | undefined;
  /** Timing of the leases on resumable parts (`_server/upload_lease.ts`). */
  lease: { timeoutMs: number; maxWaitMs: number };
  /** Resumable upload parts being written, and the stale-part sweep. */
  uploadParts: UploadParts;
  /** Parts kept after cut uploads, bounded by `limits.maxPartBytes`. */
  keptParts: KeptParts;
  /** Bulk buffer pairs, taken for one request and given back after it. */
  bufferPool: BulkBufferPool;
}

/**
 * One connection: its reader, its bulk buffers (taken from the server's
 * pool for one request at a time), its deadline.
 */
export class Session implements ClassicSession {
  readonly conn: Deno.Conn;
  readonly reader: FrameReader;
  /** The largest frame {@linkcode Session.reader} accepts. */
  readonly maxFrameBytes: number;
  /**
   * Replies held back while the client's next request is already buffered
   * (`_server/reply_batch.ts`); every write to `conn` sends them first.
   */
  readonly replies: ReplyBatch;
  /** The client's address, as logged: `host:port`. */
  peer: string;
  /**
   * The client's host (no port): the connection's, or the one a PROXY
   * protocol header gave (see {@linkcode Session.setClient}).
   */
  peerHost: string;
  /** Times every read and write of `conn`, for the idle sweep. */
  readonly activity: IoActivity = new IoActivity();
  /** The client address's key (`_server/address_key.ts`). */
  addressKey: string;
  /** When the session last became idle (`performance.now()`). */
  idleSince: number = performance.now();
  /** Requests started (classic sessions count as one). */
  requests = 0;
  /** The digest algorithm agreed in the handshake, for every `HASH`. */
  digest: DigestAlgorithm = DEFAULT_DIGEST;
  /**
   * The folder the small `GET`s' fast path holds open (strict mode with
   * `/proc`), `null` where that path is not available; set by the first
   * `GET`, closed when the connection ends or goes idle.
   */
  heldFolder: { libc: Libc; folder: HeldFolder } | null | undefined;
  #busy = false;
  #peerWatch: Promise<void> | undefined;
  #stopping = false;
  #closed = new AbortController();
  #timedOut = false;
  #buffers: BulkBuffers | undefined;
  #pool: BulkBufferPool;
  /** The connection as accepted, for {@linkcode Session.zeroCopy}. */
  #accepted: Deno.Conn;
  #zeroCopy: ZeroCopySocket | null | undefined;

  constructor(
    conn: Deno.Conn,
    pool: BulkBufferPool,
    maxFrameBytes: number = MAX_FRAME_BYTES,
  ) {
    this.#pool = pool;
    this.#accepted = conn;
    const tracked = trackIO(conn, this.activity);
    this.replies = new ReplyBatch(tracked);
    this.conn = batchedConn(tracked, this.replies);
    this.maxFrameBytes = maxFrameBytes;
    this.reader = new FrameReader(tracked, { maxFrameBytes });
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.peer = formatAddress(addr);
    this.peerHost = addr.hostname;
    this.addressKey = addressKey(addr.hostname);
  }

  /**
   * The connection comes through a proxy: from now on `peer` and
   * `peerHost` are the client's address it reported.
   */
  setClient(addr: { hostname: string; port: number }): void {
    this.peer = formatAddress(addr);
    this.peerHost = addr.hostname;
    this.addressKey = addressKey(addr.hostname);
  }

  /** In the middle of a request: a stopping server lets it finish. */
  get busy(): boolean {
    return this.#busy;
  }

  set busy(value: boolean) {
    if (value && !this.#busy) this.requests++;
    if (!value && this.#busy) this.idleSince = performance.now();
    this.#busy = value;
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

  /**
   * The bulk buffers of the current request, taken from the pool once:
   * sized for `bytes` (the most the request copies at once) by the first
   * call (see `_server/buffer_pool.ts`).
   */
  bulkBuffers(bytes?: number): BulkBuffers {
    return this.#buffers ??= this.#pool.take(bytes);
  }

  /**
   * The request is over: gives its bulk buffers back to the pool, or, when
   * `reusable` is false (a copy failed and a read or write may still be in
   * flight on them), drops them for the garbage collector.
   */
  releaseBuffers(reusable: boolean): void {
    const buffers = this.#buffers;
    this.#buffers = undefined;
    if (buffers !== undefined) this.#pool.give(buffers, reusable);
  }

  /**
   * The connection's socket for `sendfile` (`_server/zero_copy.ts`), found
   * by the first call; `undefined` where it cannot be used (TLS, no
   * `--allow-ffi`) or once the session has closed.
   */
  zeroCopy(): ZeroCopySocket | undefined {
    if (this.#closed.signal.aborted) return undefined;
    if (this.#zeroCopy === undefined) {
      this.#zeroCopy = ZeroCopySocket.of(this.#accepted) ?? null;
    }
    return this.#zeroCopy ?? undefined;
  }

  deadline(ms: number): () => void {
    const id = setTimeout(() => {
      this.#timedOut = true;
      this.close();
    }, ms);
    return () => clearTimeout(id);
  }

  /**
   * Closes the session as soon as the peer leaves while the server works
   * without reading the connection (hashing the prefix of a resumed
   * `GET`): one read is started, and whatever it brings stays buffered for
   * the next request. {@linkcode Session.settleWatch} must run before the
   * connection is read again.
   */
  watchPeer(): void {
    if (this.#peerWatch !== undefined) return;
    this.#peerWatch = this.reader.peek().then(
      (bytes) => {
        if (bytes === null) this.close();
      },
      () => this.close(),
    );
  }

  /** Waits for the read {@linkcode Session.watchPeer} started, if any. */
  async settleWatch(): Promise<void> {
    const watch = this.#peerWatch;
    this.#peerWatch = undefined;
    await watch;
  }

  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#zeroCopy?.close();
    try {
      this.conn.close();
    } catch {
      // Already closed by the peer's reset: nothing left to release.
    }
  }
}

/** One request to report: the log event, with when it started. */
export interface LogRecord extends Omit<ServerLogEvent, "durationMs"> {
  /** `performance.now()` when the request started. */
  started: number;
}

/** Reports one request to `onLog`, if set; a failing sink is ignored. */
export function emit(context: ServerContext, record: LogRecord): void {
  if (!context.onLog) return;
  const { started, ...event } = record;
  try {
    context.onLog({ ...event, durationMs: performance.now() - started });
  } catch {
    // A failing log sink must not break the connection.
  }
}

/** Per-request bookkeeping shared between a handler and the request loop. */
export interface RequestState {
  /** File bytes moved so far. */
  bytes: number;
  /** Close the connection when the request fails (its byte stream is lost). */
  closeOnError: boolean;
  /** Do not answer a failure with `ERROR` (raw bytes are being sent). */
  silentOnError: boolean;
  /** A `GET` answered from the hash cache. */
  cached?: boolean;
}

/** The request name of a message, as logged: `GET`, `PUT`, ... */
export function label(message: Message): Uppercase<Message["type"]> {
  return message.type.toUpperCase() as Uppercase<Message["type"]>;
}

/** Modification time of a file, in milliseconds (0 when unknown). */
export function mtimeOf(info: Deno.FileInfo): number {
  return info.mtime?.getTime() ?? 0;
}
